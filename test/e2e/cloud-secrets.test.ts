import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createCloudLogger } from '../../cloud/cloud-logger.js';
import { rsaCsr } from '../support/csrs.js';
import { POSAGENT_CLOUD, startCloud, tempDir } from '../support/processes.js';
import { waitFor } from '../support/wait-for.js';

/** Runs the real cloud binary under strace, recording the file syscalls of every thread. */
async function straced(args: string[], until: (out: string) => boolean): Promise<string[]> {
  const dir = tempDir('strace');
  const trace = join(dir, 'trace');
  const p = spawn(
    'strace',
    [
      '-f',
      '-qq',
      '-e',
      'trace=openat,close,fsync,fdatasync,rename,link',
      '-o',
      trace,
      process.execPath,
      POSAGENT_CLOUD,
      ...args,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  p.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<number | null>((r) => p.on('exit', r));
  p.on('error', (err: NodeJS.ErrnoException) => {
    throw err.code === 'ENOENT' ? new Error('strace is not installed: apt-get install strace') : err;
  });
  try {
    await waitFor(() => until(out) || p.exitCode !== null, 'the traced command', 30_000);
  } finally {
    // strace's own child is the cloud: stop it, and strace ends with it.
    if (p.exitCode === null) {
      const children = readFileSync(`/proc/${p.pid}/task/${p.pid}/children`, 'utf8').trim().split(/\s+/);
      for (const pid of children.filter(Boolean)) process.kill(Number(pid), 'SIGTERM');
    }
    await exited;
  }
  return readFileSync(trace, 'utf8').split('\n');
}

/**
 * Follows the trace in order: which file each fd is, which were fsynced, what got renamed (or
 * linked) into place and whether its directory was fsynced afterwards.
 */
function durableWrites(
  lines: string[],
): Map<string, { fsyncedBeforeRename: boolean; dirFsyncedAfter: boolean }> {
  const fds = new Map<number, string>();
  const synced = new Set<string>();
  const placed = new Map<string, { fsyncedBeforeRename: boolean; dirFsyncedAfter: boolean }>();
  for (const line of lines) {
    let m = /openat\(AT_FDCWD, "([^"]+)", [^)]*\) = (\d+)/.exec(line);
    if (m) {
      fds.set(Number(m[2]), m[1]!);
      continue;
    }
    m = /(?:fsync|fdatasync)\((\d+)\)\s+= 0/.exec(line);
    if (m) {
      const path = fds.get(Number(m[1]));
      if (path) {
        synced.add(path);
        for (const [target, w] of placed) if (join(target, '..') === path) w.dirFsyncedAfter = true;
      }
      continue;
    }
    m = /close\((\d+)\)\s+= 0/.exec(line);
    if (m) {
      fds.delete(Number(m[1]));
      continue;
    }
    m = /(?:rename|link)\("([^"]+)", "([^"]+)"\) = 0/.exec(line);
    if (m) placed.set(m[2]!, { fsyncedBeforeRename: synced.has(m[1]!), dirFsyncedAfter: false });
  }
  return placed;
}

/** Issue 17.11: the cloud's own secrets are written durably, are 0600, and never reach its logs. */
describe("the cloud's own secrets", () => {
  it('first start: the CA key and certificate, the server and data keys, the admin token and cloud.json are each fsynced, renamed into place, and the directory fsynced', async () => {
    const data = tempDir('cloud-secrets');
    const trace = await straced(['serve', '--data-dir', data], (out) => out.includes('"url"'));
    const writes = durableWrites(trace);
    for (const f of ['ca.key', 'ca.crt', 'server.key', 'data.key', 'admin-token', 'cloud.json']) {
      expect(writes.get(join(data, f)), f).toEqual({ fsyncedBeforeRename: true, dirFsyncedAfter: true });
    }
    for (const f of ['ca.key', 'server.key', 'data.key', 'admin-token'])
      expect((statSync(join(data, f)).mode & 0o777).toString(8), f).toBe('600');
    expect(readdirSync(data).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('release-key: both files fsynced and linked into place (never over an existing key)', async () => {
    const out = tempDir('release-key');
    const trace = await straced(['release-key', '--out', out], () => false);
    const writes = durableWrites(trace);
    expect(writes.get(join(out, 'release-key.pem'))).toEqual({
      fsyncedBeforeRename: true,
      dirFsyncedAfter: true,
    });
    expect(writes.get(join(out, 'release-key.pub.pem'))).toEqual({
      fsyncedBeforeRename: true,
      dirFsyncedAfter: true,
    });
    expect((statSync(join(out, 'release-key.pem')).mode & 0o777).toString(8)).toBe('600');
    const again = await straced(['release-key', '--out', out], () => false);
    expect(durableWrites(again).size).toBe(0);
    expect(readdirSync(out).sort()).toEqual(['release-key.pem', 'release-key.pub.pem']);
  });

  it('the logger redacts like the agent’s, plus the secrets only the cloud holds', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const log = createCloudLogger('info', sink);
    log.info(
      {
        adminToken: 'tok-1',
        headers: { authorization: 'Bearer tok-2', cookie: 'sid=tok-3', 'x-api-key': 'tok-4' },
        secret: 'whsec_tok-5',
        pairingSecret: 'tok-6',
        card: { pan: '4111111111111111' },
        key: 'tok-7',
        req: { headers: { cookie: 'sid=tok-8' }, ek: 'tok-9' },
      },
      'everything secret',
    );
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toMatch(/tok-|4111/);
    expect(JSON.parse(lines[0]!)).toMatchObject({
      adminToken: '[redacted]',
      headers: { authorization: '[redacted]', cookie: '[redacted]', 'x-api-key': '[redacted]' },
      secret: '[redacted]',
      card: '[redacted]',
      req: { headers: { cookie: '[redacted]' }, ek: '[redacted]' },
    });
  });

  it('no secret reaches the log at trace level: admin token, webhook and pairing secrets, keys, CSRs', async () => {
    const cloud = await startCloud(['--log-level', 'trace']);
    try {
      const wh = await cloud.api<{ secret: string }>('POST', '/v1/webhook-endpoints', {
        url: 'https://93.184.216.34/hooks',
        events: ['terminal.enrolled'],
      });
      expect(wh.status).toBe(201);
      const pairing = await cloud.api<{ pairingSecret: string }>(
        'POST',
        '/v1/pairings',
        { csr: rsaCsr().csr },
        null,
      );
      expect(pairing.status).toBe(201);
      await cloud.api('GET', '/v1/terminals', undefined, 'wrong-token');
      await cloud.api('POST', '/v1/enroll', { method: 'code', code: 'NOPE-NOPE', csr: rsaCsr().csr }, null);
      await cloud.stop();
      const logs = cloud.proc.stderr();
      expect(logs.length).toBeGreaterThan(0);
      for (const secret of [
        cloud.adminToken,
        wh.body.secret,
        pairing.body.pairingSecret,
        readFileSync(join(cloud.dataDir, 'ca.key'), 'utf8').split('\n')[1]!,
        readFileSync(join(cloud.dataDir, 'data.key'), 'utf8').split('\n')[1]!,
        'BEGIN CERTIFICATE REQUEST',
        'PRIVATE KEY',
      ])
        expect(logs).not.toContain(secret);
    } finally {
      await cloud.stop();
    }
  });
});
