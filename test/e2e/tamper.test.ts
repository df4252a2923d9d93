import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FleetCa } from '../../cloud/identity/fleet-ca.js';
import { createCsr } from '../../identity/device-key.js';
import {
  type AgentDirs,
  type Cloud,
  cli,
  copyAgentState,
  enrollAgent,
  type Proc,
  startAgent,
  startCloud,
  waitForLink,
} from '../support/processes.js';

const run = promisify(execFile);
const sha = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

/**
 * Issue 11: tampering and access. Certificates that expired or are not valid yet, a damaged or
 * truncated store, a key others can read — each refused with the right reason and nothing
 * changed; the local API refused to a Unix user outside its group; the admin API without its token.
 * (A wrong CA and a deactivated terminal: tls-trust and terminal-lifecycle; tampered update
 * artifacts: software-update.)
 */
describe('tampering and access', () => {
  let cloud: Cloud;
  let a: Awaited<ReturnType<typeof enrollAgent>>;
  let agent: Proc | undefined;

  const copyOf = (): AgentDirs => copyAgentState(a.dirs, 'tampered');
  /** Replaces the terminal's certificate with one from the real fleet CA, for its own key, valid from `from` for `days`. */
  const installCertificate = async (dirs: AgentDirs, from: Date, days: number) => {
    const ca = FleetCa.load(
      readFileSync(join(cloud.dataDir, 'ca.crt'), 'utf8'),
      readFileSync(join(cloud.dataDir, 'ca.key'), 'utf8'),
    );
    const csr = await createCsr(readFileSync(join(dirs.stateDir, 'keys/client.key'), 'utf8'), 'x');
    const issued = ca.issueClientCertificate(csr, a.terminalId, from, days);
    writeFileSync(join(dirs.stateDir, 'certs/client.crt'), issued.certificatePem);
  };
  const linkReason = async (dirs: AgentDirs) =>
    (await cli(['status', '--json', ...dirs.flags])).json<{ link: { state: string; reason?: string } }>()
      .link;

  beforeAll(async () => {
    cloud = await startCloud();
    a = await enrollAgent(cloud);
    agent = startAgent(a.dirs);
    await waitForLink(a.dirs);
    agent.child.kill('SIGTERM');
    await agent.exited;
    agent = undefined;
  });
  afterAll(async () => {
    agent?.child.kill('SIGKILL');
    await cloud.stop();
  });

  it('an expired and a not-yet-valid certificate: the cloud refuses each with its own reason', async () => {
    for (const [from, days, code] of [
      [new Date(Date.now() - 10 * 86_400_000), 1, 'certificate_expired'],
      [new Date(Date.now() + 10 * 86_400_000), 30, 'certificate_not_yet_valid'],
    ] as const) {
      const dirs = copyOf();
      await installCertificate(dirs, from, days);
      const p = startAgent(dirs);
      try {
        await waitForLink(dirs, (s) => s === 'error');
        const link = await linkReason(dirs);
        expect(link.reason).toContain(`(${code})`);
      } finally {
        p.child.kill('SIGKILL');
      }
    }
  });

  it('a damaged store and a truncated one: the agent refuses to start, says why, leaves the file alone', async () => {
    const garbage = copyOf();
    const db = join(garbage.stateDir, 'agent.db');
    writeFileSync(db, Buffer.alloc(16_384, 0x42));
    const truncated = copyOf();
    const tdb = join(truncated.stateDir, 'agent.db');
    // Make the store bigger than a page or two, then cut it in half.
    const grow = startAgent(truncated);
    await waitForLink(truncated);
    grow.child.kill('SIGTERM');
    await grow.exited;
    truncateSync(tdb, Math.floor(readFileSync(tdb).length / 2));
    for (const [dirs, file] of [
      [garbage, db],
      [truncated, tdb],
    ] as const) {
      const before = sha(file);
      const p = startAgent(dirs);
      const { code } = await p.exited;
      expect(code).toBe(1);
      expect(p.stderr()).toMatch(/the store .*agent\.db is damaged or is not a posagent store/);
      expect(p.stderr()).toMatch(/left untouched — do not delete it/);
      expect(sha(file)).toBe(before);
    }
  });

  it('a private key others can read: the agent refuses to start and says how to fix it', async () => {
    const dirs = copyOf();
    chmodSync(join(dirs.stateDir, 'keys/client.key'), 0o644);
    const p = startAgent(dirs);
    const { code } = await p.exited;
    expect(code).toBe(1);
    expect(p.stderr()).toMatch(/client\.key is mode 0644; it must be 0600/);
  });

  it('the admin API refuses a missing or wrong token', async () => {
    for (const token of [null, 'wrong-token']) {
      const r = await cloud.api<{ error: { code: string; message: string } }>(
        'GET',
        '/v1/terminals',
        undefined,
        token,
      );
      expect(r.status).toBe(401);
      expect(r.body.error.code).toBe('unauthorized');
    }
  });

  it.runIf(process.getuid?.() === 0)(
    'the local API refuses a Unix user outside its group, and serves one inside it',
    async () => {
      agent = startAgent(a.dirs);
      await waitForLink(a.dirs);
      await run('useradd', ['--no-create-home', '--system', 'posagent-outsider']).catch(() => undefined);
      const uid = (await run('id', ['-u', 'posagent-outsider'])).stdout.trim();
      // On a device the socket's directory is /run/posagent (0750, group posagent) under /run (0755).
      chmodSync(join(a.dirs.runtimeDir, '..'), 0o755);
      const probe = `require('http').get({socketPath: ${JSON.stringify(`${a.dirs.runtimeDir}/api.sock`)}, path: '/v1/status'}, (r) => { console.log('status', r.statusCode); process.exit(0); }).on('error', (e) => { console.log('error', e.code); process.exit(0); })`;
      // Outside the group: refused by the file system (socket 0660, runtime dir 0750).
      const outside = await run('setpriv', [
        `--reuid=${uid}`,
        `--regid=${uid}`,
        '--clear-groups',
        process.execPath,
        '-e',
        probe,
      ]);
      expect(outside.stdout.trim()).toBe('error EACCES');
      // The same user with the socket's group (the posagent group on a device): served.
      const inside = await run('setpriv', [
        `--reuid=${uid}`,
        `--regid=${uid}`,
        '--groups=0',
        process.execPath,
        '-e',
        probe,
      ]);
      expect(inside.stdout.trim()).toBe('status 200');
    },
  );
});
