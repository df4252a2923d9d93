import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localApiRequest, subscribeEvents } from '../../agent/local-api/local-api-client.js';
import { FleetCa } from '../../cloud/identity/fleet-ca.js';
import type { DiagnosticsReport } from '../../protocol/messages.js';
import { expiredCopy } from '../support/expired-certificate.js';
import {
  type AgentDirs,
  agentDirs,
  type Cloud,
  cli,
  configureAndWait,
  copyAgentState,
  enrollAgent,
  newEnrollmentCode,
  POSAGENT,
  type Proc,
  start,
  startAgent,
  startCloud,
  tempDir,
  waitForLink,
} from '../support/processes.js';
import { waitFor } from '../support/wait-for.js';

/**
 * Issue 8: `posagent diagnostics` against real causes — a stopped cloud, a wrong host, another
 * CA, an expired certificate (from the test CA) and a skewed clock (a cloud whose clock runs
 * ahead; no faketime), a missing or exposed key, a
 * damaged store, a full queue — with the daemon down and running; the bundle; the remote request.
 */
interface Run {
  code: number | null;
  report: DiagnosticsReport & { bundle?: { file: string; entries: string[] } };
}

function diagnostics(
  dirs: AgentDirs,
  opts: { env?: Record<string, string>; extra?: string[] } = {},
): Promise<Run> {
  const args = [
    POSAGENT,
    'diagnostics',
    '--json',
    '--timeout-ms',
    '3000',
    ...dirs.flags,
    '--settings',
    join(dirs.stateDir, '..', 'agent.json'),
    ...(opts.extra ?? []),
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      env: { ...process.env, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.on('exit', (code) => {
      try {
        resolve({ code, report: JSON.parse(out) as Run['report'] });
      } catch {
        reject(new Error(`diagnostics printed no JSON (exit ${code}): ${out} ${err}`));
      }
    });
  });
}

const check = (r: Run, id: string) => {
  const c = r.report.checks.find((x) => x.id === id);
  if (!c) throw new Error(`no check ${id} in ${r.report.checks.map((x) => x.id).join(', ')}`);
  return c;
};
const verdicts = (r: Run, skip: string[]) =>
  Object.fromEntries(r.report.checks.filter((c) => !skip.includes(c.id)).map((c) => [c.id, c.status]));

describe('diagnostics', () => {
  let cloud: Cloud;
  let a: Awaited<ReturnType<typeof enrollAgent>>;
  let agent: Proc | undefined;
  const socket = () => `${a.dirs.runtimeDir}/api.sock`;

  /** A copy of the terminal's state to break on purpose (the daemon is stopped). */
  const scratch = (): AgentDirs => copyAgentState(a.dirs, 'scratch');
  const stopAgent = async () => {
    agent?.child.kill('SIGTERM');
    await agent?.exited;
    agent = undefined;
  };

  beforeAll(async () => {
    cloud = await startCloud();
    a = await enrollAgent(cloud);
    agent = startAgent(a.dirs);
    await waitForLink(a.dirs);
  });
  afterAll(async () => {
    agent?.child.kill('SIGKILL');
    await cloud.stop();
  });

  it('a healthy terminal passes with the daemon running; stopped, the same verdicts but daemon, link and socket', async () => {
    const running = await diagnostics(a.dirs);
    expect(running.code).toBe(0);
    expect(running.report.summary.fail).toBe(0);
    expect(running.report.checks.map((c) => c.id)).toEqual([
      'enrolled',
      'identity_files',
      'certificate',
      'dns',
      'tcp',
      'tls',
      'websocket',
      'clock',
      'daemon',
      'link',
      'store',
      'config',
      'queue',
      'disk',
      'local_api',
    ]);
    // The POS app's screen gets the same report from the daemon.
    const local = await localApiRequest<DiagnosticsReport>(
      socket(),
      'GET',
      '/v1/diagnostics',
      undefined,
      20_000,
    );
    expect(local.status).toBe(200);
    expect(verdicts({ code: 0, report: local.body }, [])).toEqual(verdicts(running, []));

    await stopAgent();
    const stopped = await diagnostics(a.dirs);
    expect(stopped.code).toBe(1);
    expect(check(stopped, 'daemon')).toMatchObject({
      status: 'fail',
      hint: expect.stringContaining('systemctl start posagent'),
    });
    expect(check(stopped, 'link').status).toBe('fail');
    expect(check(stopped, 'local_api').status).toBe('warn');
    const daemonOnly = ['daemon', 'link', 'local_api'];
    expect(verdicts(stopped, daemonOnly)).toEqual(verdicts(running, daemonOnly));
    // Stopped, the WebSocket upgrade is really tried.
    expect(check(stopped, 'websocket').detail).toMatch(/upgraded to posagent\.v1/);
  });

  it('the cloud asks a connected terminal for its report; GET returns the last one; offline → 409', async () => {
    agent = startAgent(a.dirs);
    await waitForLink(a.dirs);
    const r = await cloud.api<DiagnosticsReport & { object: string; terminalId: string }>(
      'POST',
      `/v1/terminals/${a.terminalId}/diagnostics`,
    );
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      object: 'diagnostics_report',
      terminalId: a.terminalId,
      summary: { fail: 0 },
    });
    expect(r.body.checks.find((c) => c.id === 'link')?.status).toBe('pass');
    const last = await cloud.api<DiagnosticsReport>('GET', `/v1/terminals/${a.terminalId}/diagnostics`);
    expect(last.body.generatedAt).toBe(r.body.generatedAt);
    await stopAgent();
    await waitForLink(a.dirs, (s) => s !== 'online');
    const offline = await cloud.api<{ error: { code: string } }>(
      'POST',
      `/v1/terminals/${a.terminalId}/diagnostics`,
    );
    expect(offline.status).toBe(409);
    expect(offline.body.error.code).toBe('terminal_offline');
  });

  it('each check fails for its real cause, with a hint for the technician', async () => {
    const missingKey = scratch();
    rmSync(join(missingKey.stateDir, 'keys/client.key'));
    const r1 = await diagnostics(missingKey);
    expect(r1.code).toBe(1);
    expect(check(r1, 'identity_files')).toMatchObject({
      status: 'fail',
      detail: expect.stringMatching(/missing: .*client\.key/),
    });

    const exposed = scratch();
    chmodSync(join(exposed.stateDir, 'keys/client.key'), 0o644);
    expect(check(await diagnostics(exposed), 'identity_files')).toMatchObject({
      status: 'fail',
      detail: expect.stringMatching(/client\.key is 0644 \(must be 0600\)/),
      hint: expect.stringContaining('chmod 600'),
    });

    const otherCa = scratch();
    const { ca } = await FleetCa.create('some other fleet', new Date());
    writeFileSync(join(otherCa.stateDir, 'certs/fleet-ca.crt'), ca.certificatePem);
    const r3 = await diagnostics(otherCa);
    expect(check(r3, 'tls')).toMatchObject({
      status: 'fail',
      detail: expect.stringMatching(/not signed by the pinned fleet CA/),
    });
    expect(check(r3, 'websocket').detail).toMatch(/not tried/);

    const wrongHost = await diagnostics(scratch(), {
      env: { POSAGENT_CLOUD_URL: 'https://no-such-host.invalid:8443' },
    });
    expect(check(wrongHost, 'dns')).toMatchObject({
      status: 'fail',
      detail: expect.stringMatching(/no-such-host\.invalid does not resolve/),
    });

    const damaged = scratch();
    const db = join(damaged.stateDir, 'agent.db');
    const garbage = Buffer.alloc(8192, 0x5a);
    writeFileSync(db, garbage);
    const r5 = await diagnostics(damaged);
    expect(check(r5, 'store')).toMatchObject({
      status: 'fail',
      hint: expect.stringContaining('do not delete it'),
    });
    expect(readFileSync(db).equals(garbage)).toBe(true); // diagnostics changed nothing

    // A device 3 days behind its cloud: a cloud whose clock runs 3 days ahead (no faketime).
    const ahead = await startCloud(['--clock-offset-sec', String(3 * 86_400)]);
    try {
      const skewed = await diagnostics(scratch(), { env: { POSAGENT_CLOUD_URL: ahead.url } });
      expect(check(skewed, 'clock')).toMatchObject({
        status: 'fail',
        detail: expect.stringMatching(/3 days behind/),
      });
    } finally {
      await ahead.stop();
    }

    // An already-expired certificate from the test CA, for the terminal's own key.
    const expired = scratch();
    const certFile = join(expired.stateDir, 'certs/client.crt');
    writeFileSync(
      certFile,
      expiredCopy(
        readFileSync(certFile, 'utf8'),
        readFileSync(join(cloud.dataDir, 'ca.crt'), 'utf8'),
        readFileSync(join(cloud.dataDir, 'ca.key'), 'utf8'),
      ),
    );
    expect(check(await diagnostics(expired), 'certificate')).toMatchObject({
      status: 'fail',
      detail: expect.stringMatching(/expired on/),
      hint: expect.stringMatching(/re-enrolled/),
    });
  });

  it('issue 18.4: not enrolled, with a cloud URL and CA configured, the network checks run; the unenrolled daemon serves them and its enrollment progress', async () => {
    const dirs = agentDirs();
    const settingsFile = join(dirs.stateDir, '..', 'agent.json');
    const base = JSON.parse(readFileSync(settingsFile, 'utf8')) as object;
    writeFileSync(settingsFile, JSON.stringify({ ...base, cloudUrl: cloud.url, fleetCaFile: cloud.caFile }));
    const r = await diagnostics(dirs);
    expect(r.code).toBe(1); // not enrolled is a fail
    expect(check(r, 'enrolled').status).toBe('fail');
    expect(verdicts(r, ['enrolled', 'daemon', 'store', 'config', 'queue', 'disk', 'local_api'])).toEqual({
      dns: 'pass',
      tcp: 'pass',
      tls: 'pass',
      clock: 'pass',
    });
    expect(check(r, 'tls').detail).toMatch(/chains to the fleet CA/);
    // Another CA configured than the cloud's: the check says so before anyone tries to enroll.
    const { ca } = await FleetCa.create('some other fleet', new Date());
    const otherCa = join(tempDir('ca'), 'fleet-ca.crt');
    writeFileSync(otherCa, ca.certificatePem);
    writeFileSync(settingsFile, JSON.stringify({ ...base, cloudUrl: cloud.url, fleetCaFile: otherCa }));
    expect(check(await diagnostics(dirs), 'tls')).toMatchObject({
      status: 'fail',
      detail: expect.stringMatching(/not signed by the pinned fleet CA/),
      hint: expect.stringMatching(/fleetCaFile/),
    });
    writeFileSync(settingsFile, JSON.stringify({ ...base, cloudUrl: cloud.url, fleetCaFile: cloud.caFile }));

    // The unenrolled daemon: GET /v1/diagnostics, and GET /v1/events with the pairing progress.
    const daemon = startAgent(dirs);
    const sock = `${dirs.runtimeDir}/api.sock`;
    try {
      await waitFor(
        async () => (await localApiRequest(sock, 'GET', '/v1/status').catch(() => null)) ?? undefined,
        'the daemon',
      );
      const local = await localApiRequest<DiagnosticsReport>(
        sock,
        'GET',
        '/v1/diagnostics',
        undefined,
        20_000,
      );
      expect(local.status).toBe(200);
      expect(verdicts({ code: 1, report: local.body }, ['daemon', 'local_api', 'store'])).toEqual(
        verdicts(r, ['daemon', 'local_api', 'store']),
      );
      const stream = await subscribeEvents(sock);
      const { locationId } = await newEnrollmentCode(cloud);
      const pair = start(POSAGENT, ['enroll', '--pair', '--json', '--settings', settingsFile, ...dirs.flags]);
      const pairing = await waitFor(
        () =>
          stream.events.find(
            (e) => e.event === 'enrollment' && (e.data as { state: string }).state === 'pairing',
          ),
        'the pairing code on the event stream',
      );
      const code = (pairing.data as { code: string }).code;
      expect(code).toMatch(/^[A-Z0-9]{4}-[A-Z0-9]{4}$/);
      const activated = await cloud.api<{ id: string }>('POST', '/v1/terminals/activate', {
        activationCode: code,
        locationId,
        name: 'Till Q',
      });
      expect(activated.status).toBe(201);
      expect((await pair.exited).code).toBe(0);
      const enrolled = await waitFor(
        () =>
          stream.events.find(
            (e) => e.event === 'enrollment' && (e.data as { state: string }).state === 'enrolled',
          ),
        'the enrolled event',
      );
      expect(enrolled.data).toMatchObject({ terminalId: activated.body.id, name: 'Till Q' });
      // The daemon goes on enrolled in the same process; the app reconnects and misses nothing.
      await stream.ended;
      const after = await waitFor(
        () => subscribeEvents(sock, undefined, { lastEventId: stream.lastEventId()! }).catch(() => undefined),
        'the stream of the enrolled daemon',
      );
      await waitFor(
        () =>
          after.events.find((e) => e.event === 'link' && (e.data as { state: string }).state === 'online'),
        'the link online on the same event ids',
      );
      expect(after.events.some((e) => e.event === 'missed')).toBe(false);
      after.close();
    } finally {
      daemon.child.kill('SIGKILL');
    }
  });

  it('a full queue and a stopped cloud; the bundle has the escalation fields and no secret', async () => {
    agent = startAgent(a.dirs);
    await waitForLink(a.dirs);
    await configureAndWait(cloud, a.terminalId, {
      offlineMode: { enabled: true, maxAmount: 10_000, maxQueue: 2 },
    });
    await cloud.stop();
    await waitForLink(a.dirs, (s) => s !== 'online');
    const pan = '4111111111111111';
    for (let i = 0; i < 2; i++) {
      const r = await localApiRequest(socket(), 'POST', '/v1/transactions', {
        id: randomUUID(),
        amount: 500,
        currency: 'EUR',
        card: { pan, expiry: '12/29' },
      });
      expect(r.status).toBe(201);
    }
    const bundleFile = join(tempDir('bundle'), 'support.tar.gz');
    const r = await diagnostics(a.dirs, { extra: ['--bundle', bundleFile] });
    expect(check(r, 'queue')).toMatchObject({
      status: 'fail',
      detail: expect.stringMatching(/^full: 2 waiting/),
    });
    expect(check(r, 'tcp')).toMatchObject({ status: 'fail', detail: expect.stringMatching(/ECONNREFUSED/) });
    expect(check(r, 'link').status).toBe('fail');

    const out = tempDir('bundle-out');
    const tar = await import('tar');
    await tar.x({ file: bundleFile, cwd: out });
    const names = readdirSync(out).sort();
    expect(names).toEqual(
      [
        'certificate.json',
        'config.json',
        'escalation.json',
        'logs.txt',
        'queue.json',
        'report.json',
        'settings.json',
        'status.json',
      ].sort(),
    );
    const escalation = JSON.parse(readFileSync(join(out, 'escalation.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    expect(escalation).toMatchObject({
      terminalId: a.terminalId,
      terminalName: 'Front Register 1',
      locationId: a.locationId,
      certificateNotAfter: expect.any(String),
      lastHeartbeatAt: expect.any(String),
      failedChecks: expect.arrayContaining(['queue', 'tcp']),
    });
    expect(escalation).toHaveProperty('serialNumber');
    const everything = names.map((n) => readFileSync(join(out, n), 'utf8')).join('\n');
    const keyBody = readFileSync(join(a.dirs.stateDir, 'keys/client.key'), 'utf8').split('\n')[1]!;
    expect(everything).not.toContain('PRIVATE KEY');
    expect(everything).not.toContain(keyBody);
    expect(everything).not.toContain(cloud.adminToken);
    expect(everything).not.toContain(pan);
    expect(everything).not.toContain('sealedCard');
    await stopAgent();
    // The human report, grouped, exit 1.
    const human = await cli([
      'diagnostics',
      ...a.dirs.flags,
      '--settings',
      join(a.dirs.stateDir, '..', 'agent.json'),
      '--timeout-ms',
      '2000',
    ]);
    expect(human.code).toBe(1);
    expect(human.stdout).toMatch(/Connection to the cloud\n {2}PASS {2}dns/);
    expect(human.stdout).toMatch(/FAIL {2}tcp .*ECONNREFUSED\n.*→ nothing answers on that port/);
  });
});
