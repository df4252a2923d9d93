import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeploymentView } from '../../cloud/deployments/deployment-service.js';
import {
  installRelease,
  newReleaseKey,
  packRelease,
  publishRelease,
  type ReleaseKey,
  type Supervised,
  signRelease,
  superviseAgent,
} from '../../harness/releases.js';
import { type Cloud, enrollAgent, startCloud, tempDir } from '../support/processes.js';
import { waitFor } from '../support/wait-for.js';

const run = promisify(execFile);
const AGENTS = 50;

interface Target {
  terminalId: string;
  group: number;
  state: string;
  reason: string | null;
}

/**
 * Issue 24 item 1: deployments through the built cloud to 50 real agents, each installed from a
 * real build of this package and supervised as systemd would (boot guard before each start), each
 * update through the real path (download, signature, installer, switch, trial, commit or rollback).
 */
describe('deployments to 50 agents', () => {
  let cloud: Cloud;
  let key: ReleaseKey;
  const agents: { terminalId: string; stateDir: string; proc: Supervised }[] = [];
  const packs = tempDir('packs');

  const deployment = async (id: string) =>
    (await cloud.api<DeploymentView>('GET', `/v1/deployments/${id}`)).body;
  const targets = async (id: string) =>
    (await cloud.api<{ data: Target[] }>('GET', `/v1/deployments/${id}/terminals?limit=100`)).body.data;
  const version = async (terminalId: string) =>
    (await cloud.api<{ softwareVersion: string }>('GET', `/v1/terminals/${terminalId}`)).body.softwareVersion;
  const publish = async (tarball: string) =>
    expect((await publishRelease(cloud, tarball, await signRelease(tarball, key))).status).toBe(201);

  beforeAll(async () => {
    key = await newReleaseKey();
    cloud = await startCloud(['--release-public-key', key.publicKeyFile]);
    const base = await packRelease('1.0.0', packs);
    await publish(await packRelease('1.1.0', packs));
    // A build that cannot start on the terminals the test marks (a file in their state dir).
    await publish(
      await packRelease('1.2.0', packs, async (stage) => {
        const bin = join(stage, 'dist/bin/posagent.js');
        const [shebang, ...rest] = (await readFile(bin, 'utf8')).split('\n');
        const check = `if (process.argv[2] === 'run') { const i = process.argv.indexOf('--state-dir'); if (i > 0 && (await import('node:fs')).existsSync(process.argv[i + 1] + '/fail-1.2.0')) { console.error('1.2.0: cannot start here'); process.exit(1); } }`;
        await writeFile(bin, [shebang, check, ...rest].join('\n'));
      }),
    );
    // One installed tree, hard-linked into each terminal's install dir (root's, read-only to the service).
    const template = tempDir('install-template');
    await installRelease(base, template, '1.0.0');
    const enrolled: Awaited<ReturnType<typeof enrollAgent>>[] = [];
    for (let i = 0; i < AGENTS; i += 5)
      enrolled.push(
        ...(await Promise.all(Array.from({ length: Math.min(5, AGENTS - i) }, () => enrollAgent(cloud)))),
      );
    for (const a of enrolled) {
      const installDir = join(a.dirs.stateDir, '..', 'install');
      await run('cp', ['-al', template, installDir]);
      agents.push({
        terminalId: a.terminalId,
        stateDir: a.dirs.stateDir,
        proc: superviseAgent(installDir, a.dirs, key.publicKeyFile),
      });
    }
    await waitFor(
      async () =>
        (await cloud.api<{ uniqueTerminalIds: string[] }>('POST', '/v1/connectedTerminals', {})).body
          .uniqueTerminalIds.length === AGENTS || undefined,
      'all 50 agents online',
      120_000,
    );
  }, 300_000);

  afterAll(async () => {
    await Promise.all(agents.map((a) => a.proc.stop()));
    await cloud?.stop();
  });

  it('group 2 starts only once group 1 reached its share; pause holds it, resume goes on, cancel skips the rest', async () => {
    const created = await cloud.api<DeploymentView>('POST', '/v1/deployments', {
      name: 'winter',
      release: '1.1.0',
      target: { terminalIds: agents.map((a) => a.terminalId) },
      groups: [{ count: 5 }, { count: 15 }, { percent: 100 }],
      advanceWhen: { successPercent: 80 },
      stopWhen: { failurePercent: 50 },
      maxPerMinute: 600,
      now: true,
    });
    expect(created.status).toBe(201);
    const id = created.body.id;
    expect(created.body.groups.map((g) => g.size)).toEqual([5, 15, 30]);
    // Every look at it: group 2 has nothing asked before group 1 is at 80 %.
    const watched = await waitFor(
      async () => {
        const d = await deployment(id);
        const [g1, g2] = d.groups;
        if (g2!.queued < 15) expect(g1!.completed).toBeGreaterThanOrEqual(4);
        return g2!.completed >= 1 ? d : undefined;
      },
      'group 2 under way',
      120_000,
      200,
    );
    expect(watched.groups[1]!.started).toBe(true);

    const paused = await cloud.api<DeploymentView>('POST', `/v1/deployments/${id}/pause`);
    expect(paused.body.state).toBe('paused');
    const queuedAtPause = paused.body.totals.queued;
    // What was under way finishes; nothing new is asked while it does.
    const drained = await waitFor(
      async () => {
        const d = await deployment(id);
        expect(d.totals.queued).toBe(queuedAtPause);
        return d.totals.processing === 0 ? d : undefined;
      },
      'the terminals under way to finish',
      120_000,
      200,
    );
    expect(drained.state).toBe('paused');

    expect((await cloud.api<DeploymentView>('POST', `/v1/deployments/${id}/resume`)).body.state).toBe(
      'running',
    );
    await waitFor(
      async () => ((await deployment(id)).totals.queued < queuedAtPause ? true : undefined),
      'asks again',
    );
    const cancelled = await cloud.api<DeploymentView>('POST', `/v1/deployments/${id}/cancel`);
    expect(cancelled.body).toMatchObject({ state: 'cancelled', reason: 'cancelled by the operator' });
    const done = await waitFor(
      async () => {
        const d = await deployment(id);
        return d.totals.processing === 0 ? d : undefined;
      },
      'the last ones under way to finish',
      120_000,
    );
    expect(done.totals.queued).toBe(0);
    expect(done.totals.failed).toBe(0);
    expect(done.totals.completed + done.totals.skipped).toBe(AGENTS);
    for (const t of await targets(id)) {
      expect(await version(t.terminalId)).toBe(t.state === 'completed' ? '1.1.0' : '1.0.0');
      if (t.state === 'skipped') expect(t.reason).toBe('the deployment was cancelled');
    }
    expect((await cloud.api<DeploymentView>('POST', `/v1/deployments/${id}/resume`)).status).toBe(409);
  }, 300_000);

  it('a release that fails on 30 %: the deployment stops at its threshold after group 1, the rest untouched', async () => {
    const created = await cloud.api<DeploymentView>('POST', '/v1/deployments', {
      release: '1.2.0',
      target: { terminalIds: agents.map((a) => a.terminalId) },
      groups: [{ count: 10 }, { percent: 100 }],
      advanceWhen: { successPercent: 80 },
      stopWhen: { failurePercent: 20, minFinished: 10 },
      maxPerMinute: 600,
      now: true,
      startAt: new Date(Date.now() + 3000).toISOString(),
    });
    const id = created.body.id;
    expect(created.body.state).toBe('scheduled');
    // 30 % of the fleet cannot start 1.2.0: three of group 1, twelve of the rest.
    const all = await targets(id);
    const first = all.filter((t) => t.group === 0).map((t) => t.terminalId);
    const rest = all.filter((t) => t.group === 1).map((t) => t.terminalId);
    const failing = new Set([...first.slice(0, 3), ...rest.slice(0, 12)]);
    for (const a of agents) if (failing.has(a.terminalId)) writeFileSync(join(a.stateDir, 'fail-1.2.0'), '');
    const before = new Map<string, string>();
    for (const t of rest) before.set(t, await version(t));

    const stopped = await waitFor(
      async () => {
        const d = await deployment(id);
        return d.state === 'stopped' ? d : undefined;
      },
      'the deployment stopped',
      180_000,
    );
    expect(stopped.reason).toBe(
      '3 of 10 terminals finished failed the update (30 %, stopWhen.failurePercent 20)',
    );
    expect(stopped.groups[0]).toMatchObject({ completed: 7, failed: 3 });
    expect(stopped.groups[1]).toMatchObject({ started: false, skipped: 40, queued: 0, processing: 0 });
    for (const t of await targets(id)) {
      if (t.group === 1) {
        expect(t).toMatchObject({ state: 'skipped', reason: 'the deployment stopped' });
        expect(await version(t.terminalId)).toBe(before.get(t.terminalId));
        const actions = (
          await cloud.api<{ data: { params: { release?: { version: string } } }[] }>(
            'GET',
            `/v1/terminals/${t.terminalId}/actions`,
          )
        ).body.data;
        expect(actions.some((x) => x.params.release?.version === '1.2.0')).toBe(false);
      } else if (failing.has(t.terminalId)) {
        expect(t.state).toBe('failed');
        expect(t.reason).toMatch(
          /version 1\.2\.0 failed to start: 3 starts without reaching the cloud.*the boot guard rolled back/,
        );
      } else expect(t.state).toBe('completed');
    }
  }, 300_000);
});
