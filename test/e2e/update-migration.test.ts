import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_STORE_SCHEMA } from '../../agent/agent-store.js';
import { localApiRequest } from '../../agent/local-api/local-api-client.js';
import {
  installRelease,
  newReleaseKey,
  POSAGENT_INSTALLER,
  packRelease,
  publishRelease,
  type ReleaseKey,
  type Supervised,
  signRelease,
  superviseAgent,
} from '../../harness/releases.js';
import type { GuardResult, StoreSchemaNote } from '../../release/layout.js';
import {
  type Cloud,
  type CloudAction,
  configureAndWait,
  enrollAgent,
  queueAction,
  startCloud,
  tempDir,
  waitForAction,
  waitForLink,
} from '../support/processes.js';
import { waitFor } from '../support/wait-for.js';

const run = promisify(execFile);
const S = AGENT_STORE_SCHEMA;
const SALE = randomUUID();

/**
 * A newer release of this package whose agent store has more steps than this one's (appended to
 * the bundle's own migration list, as that release's source would have them), which says so in
 * its `dist/bin/store-schema.json`, and which can never reach the cloud (wrong subprotocol), so
 * that its trial fails and the boot guard decides.
 */
function newerBuild(extraSteps: string[]) {
  return async (stage: string) => {
    const dir = join(stage, 'dist/bin/chunks');
    let patched = 0;
    for (const f of await readdir(dir)) {
      let text = await readFile(join(dir, f), 'utf8');
      const end = '  `\n];\nvar DEACTIVATION_VERSION';
      if (text.includes('CREATE TABLE deactivation') && text.includes(end)) {
        text = text.replace(end, `  \`,\n  ${extraSteps.join(',\n  ')}\n];\nvar DEACTIVATION_VERSION`);
        patched++;
      }
      if (text.includes('"posagent.v1"')) text = text.replaceAll('"posagent.v1"', '"posagent.v0"');
      await writeFile(join(dir, f), text);
    }
    if (patched !== 1) throw new Error(`the store's migration list was found in ${patched} chunks, not 1`);
    await writeFile(
      join(stage, 'dist/bin/store-schema.json'),
      `${JSON.stringify({ agentStore: S + extraSteps.length })}\n`,
    );
  };
}
const ADDITIVE = '`CREATE TABLE later_feature (x INTEGER)`';
const BREAKING = `{ sql: \`CREATE TABLE outbox_v2 (seq INTEGER)\`, oldestReader: ${S + 2} }`;

/**
 * Issue 24 item 4: a release that adds a store migration stays rollback-able. Real builds of this
 * package, the real update path (download, verify, installer, switch), the real boot guard between
 * starts, real agents of each version on the same store.
 */
describe('a rollback across a store migration', () => {
  let cloud: Cloud;
  let key: ReleaseKey;
  let a: Awaited<ReturnType<typeof enrollAgent>>;
  let agent: Supervised;
  const installDir = tempDir('install');
  const packs = tempDir('packs');
  const tarballs = new Map<string, string>();
  const socket = () => `${a.dirs.runtimeDir}/api.sock`;
  const storeNote = () =>
    JSON.parse(readFileSync(join(a.dirs.stateDir, 'store-schema.json'), 'utf8')) as StoreSchemaNote;
  const guardResult = () =>
    JSON.parse(readFileSync(join(installDir, 'update/guard-result.json'), 'utf8')) as GuardResult;
  const runningVersion = async () =>
    (await localApiRequest<{ softwareVersion: string }>(socket(), 'GET', '/v1/status')).body.softwareVersion;
  const update = async (version: string) => {
    const t = tarballs.get(version) as string;
    expect((await publishRelease(cloud, t, await signRelease(t, key))).status).toBe(201);
    return (await queueAction(cloud, a.terminalId, { type: 'update', params: { version } })).id;
  };
  const failed = (id: string) =>
    waitForAction(
      cloud,
      a.terminalId,
      id,
      (x: CloudAction) => x.status === 'failed',
      'the update reported failed',
      90_000,
    );

  beforeAll(async () => {
    key = await newReleaseKey();
    cloud = await startCloud(['--release-public-key', key.publicKeyFile]);
    const builds: [string, ((stage: string) => Promise<void>) | undefined][] = [
      ['1.0.0', undefined],
      ['2.0.0', newerBuild([ADDITIVE])],
      ['3.0.0', newerBuild([ADDITIVE, BREAKING])],
      ['3.0.1', newerBuild([ADDITIVE, BREAKING])],
    ];
    for (const [version, patch] of builds) tarballs.set(version, await packRelease(version, packs, patch));
    await installRelease(tarballs.get('1.0.0') as string, installDir, '1.0.0');
    a = await enrollAgent(cloud);
    agent = superviseAgent(installDir, a.dirs, key.publicKeyFile);
    await waitForLink(a.dirs);
    expect(await runningVersion()).toBe('1.0.0');
    expect(storeNote()).toEqual({ version: S, oldestReader: 0, snapshot: null, salesSinceSnapshot: false });
    await configureAndWait(cloud, a.terminalId, {
      offlineMode: { enabled: true, maxAmount: 100_000, maxQueue: 1000 },
    });
  }, 180_000);

  afterAll(async () => {
    await agent?.stop();
    await cloud?.stop();
  });

  it('an additive migration: rolled back, and the previous release opens the newer store as it is', async () => {
    const id = await update('2.0.0');
    const f = await failed(id);
    expect(f.step).toBe('rolled_back');
    expect(f.reason).toMatch(
      /2\.0\.0 did not reach the cloud within its health window.*the boot guard rolled back to 1\.0\.0$/,
    );
    await waitFor(async () => (await runningVersion().catch(() => null)) === '1.0.0', 'back on 1.0.0');
    await waitForLink(a.dirs);
    expect(storeNote()).toMatchObject({ version: S + 1, oldestReader: 0, snapshot: null });
    expect(agent.output()).toContain('the store is of a newer release; used as it is');
  }, 120_000);

  it('a migration the previous release cannot open, no sale since: rolled back with the snapshot from before it put back', async () => {
    const id = await update('3.0.0');
    const f = await failed(id);
    expect(f.step).toBe('rolled_back');
    expect(f.reason).toMatch(
      new RegExp(
        `the boot guard rolled back to 1\\.0\\.0, and the store back to its snapshot from before the migration to schema ${S + 2}$`,
      ),
    );
    await waitFor(async () => (await runningVersion().catch(() => null)) === '1.0.0', 'back on 1.0.0');
    await waitForLink(a.dirs);
    expect(guardResult().restoreStore).toEqual({
      snapshot: `agent.db.before-schema-${S + 2}`,
      migratedTo: S + 2,
    });
    expect(storeNote()).toMatchObject({ version: S + 1, snapshot: null });
    expect(
      readdirSync(a.dirs.stateDir).some((n) => n.startsWith(`agent.db.rolled-back-schema-${S + 2}-`)),
    ).toBe(true);
    expect(agent.output()).toContain(
      'rolled back across a store migration: the store is its snapshot from before it',
    );
  }, 120_000);

  it('the same, but a sale was taken on the new release: the guard refuses the rollback with its reason, the release stays, the sale kept, no flip-flop', async () => {
    const id = await update('3.0.1');
    await waitFor(async () => (await runningVersion().catch(() => null)) === '3.0.1', 'on 3.0.1 (on trial)');
    const sale = await localApiRequest<{ state: string }>(socket(), 'POST', '/v1/transactions', {
      id: SALE,
      amount: 1250,
      currency: 'EUR',
    });
    expect(sale.status).toBe(201);
    expect(storeNote()).toMatchObject({ version: S + 2, oldestReader: S + 2, salesSinceSnapshot: true });
    await waitFor(
      () =>
        existsSync(join(installDir, 'update/guard-result.json')) &&
        guardResult().to === '3.0.1' &&
        guardResult().kept === true &&
        // The guard leaves its result first and then ends the trial: wait for both.
        !existsSync(join(installDir, 'trial.json')),
      'the guard refused',
      60_000,
    );
    expect(guardResult().reason).toBe(
      `version 3.0.1 did not reach the cloud within its health window (last start ended: exit-code, exited=75); the boot guard refused to roll back to 1.0.0: the store was migrated to schema ${S + 2}, which only software of schema ${S + 2} or later can open (1.0.0 knows ${S}), and sales were taken since the snapshot from before the migration, which putting it back would lose; 3.0.1 stays`,
    );
    expect(readlinkSync(join(installDir, 'current'))).toBe('releases/3.0.1');
    expect(existsSync(join(installDir, 'trial.json'))).toBe(false);
    // 3.0.1 starts again, reports the refusal (to its outbox: it cannot reach the cloud) and runs on.
    await waitFor(
      async () => (await runningVersion().catch(() => null)) === '3.0.1',
      'on 3.0.1 after the refusal',
    );
    await waitFor(
      () => agent.output().includes('update failed and could not be rolled back'),
      'the refusal reported',
    );
    const open = await localApiRequest<{ open: { id: string }[] }>(socket(), 'GET', '/v1/actions');
    expect(open.body.open.map((x) => x.id)).not.toContain(id);
    const kept = await localApiRequest<{ id: string; state: string }>(
      socket(),
      'GET',
      `/v1/transactions/${SALE}`,
    );
    expect(kept.body).toMatchObject({ id: SALE, state: 'stored' });
    // The guard at a next start (what systemd runs before each) has nothing left to decide.
    await run(process.execPath, [
      POSAGENT_INSTALLER,
      'guard',
      '--install-dir',
      installDir,
      '--state-dir',
      a.dirs.stateDir,
    ]);
    expect(readlinkSync(join(installDir, 'current'))).toBe('releases/3.0.1');
    expect(agent.gaveUp()).toBe(false);
    expect(agent.proc().child.exitCode).toBeNull();
  }, 120_000);
});
