import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { waitFor } from './wait-for.js';

/**
 * A local fleet on loopback from real processes: the built `posagent-cloud` and `posagent`
 * binaries, temp dirs, ephemeral ports. The demo, the benchmarks and the e2e tests all use it.
 */
function packageRoot(from: string): string {
  let dir = from;
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${from}`);
    dir = up;
  }
  return dir;
}

export const ROOT = packageRoot(import.meta.dirname);
/** The shipped binaries (package.json `bin`): the bundles, not the tsc output. */
export const POSAGENT = join(ROOT, 'dist/bin/posagent.js');
export const POSAGENT_CLOUD = join(ROOT, 'dist/bin/posagent-cloud.js');

const made: string[] = [];
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `posagent-${prefix}-`));
  made.push(dir);
  return dir;
}

/**
 * The benchmarks' and the fleet simulator's temp dirs hold a cloud's CA key, admin token and
 * ticket secret and the terminals' keys: removed when the process exits, whatever its outcome
 * (not when it is killed). Tests keep theirs, for a failure to be looked at.
 */
export function removeTempDirsAtExit(): void {
  process.once('exit', () => {
    for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
}

export interface Proc {
  child: ChildProcess;
  output(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Set by a test that makes this process fail on purpose: its fatal log line is then expected. */
  expectFatal: boolean;
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of running) c.kill('SIGKILL');
});

/** The log line `posagent run` and `posagent-cloud serve` write before they exit on an unhandled failure. */
const FATAL_LINE = /"msg":"(unhandled promise rejection|uncaught exception); exiting"/;
const unexpectedFatal: string[] = [];

/**
 * Fatal lines (an unhandled rejection or uncaught exception) that processes started here logged
 * since the last call, other than those a test asked for. The test setup fails any test with one.
 */
export function takeUnexpectedFatal(): string[] {
  return unexpectedFatal.splice(0);
}

/** Calls `onLine` for each complete line of a stream. */
function eachLine(onLine: (line: string) => void): (d: Buffer) => void {
  let partial = '';
  return (d) => {
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const l of lines) onLine(l);
  };
}

export interface StartOptions {
  /** Start under this open-file limit (`ulimit -n`, as systemd's `LimitNOFILE`). */
  fdLimit?: number;
}

export function start(
  bin: string,
  args: string[],
  env: Record<string, string> = {},
  opts: StartOptions = {},
): Proc {
  // With an open-file limit, through the shell's ulimit; `exec` keeps the pid node's.
  const [cmd, argv] =
    opts.fdLimit === undefined
      ? [process.execPath, [bin, ...args]]
      : ['/bin/sh', ['-c', `ulimit -n ${opts.fdLimit} && exec "$@"`, 'sh', process.execPath, bin, ...args]];
  const child = spawn(cmd, argv, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let out = '';
  let err = '';
  const proc = { expectFatal: false } as Proc;
  const onLine = (line: string) => {
    if (FATAL_LINE.test(line) && !proc.expectFatal)
      unexpectedFatal.push(`${bin.split('/').pop()} ${args[0] ?? ''}: ${line.slice(0, 2000)}`);
  };
  const watchOut = eachLine(onLine);
  const watchErr = eachLine(onLine);
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    watchOut(d);
  });
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    watchErr(d);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.on('exit', (code, signal) => {
      running.delete(child);
      r({ code, signal });
    }),
  );
  return Object.assign(proc, { child, output: () => out, stderr: () => err, exited });
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  json<T = Record<string, unknown>>(): T;
}

export async function cli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const p = start(POSAGENT, args, env);
  const { code } = await p.exited;
  const stdout = p.output();
  return {
    code,
    stdout,
    stderr: p.stderr(),
    json: <T>() => JSON.parse(stdout) as T,
  };
}

export interface Cloud {
  proc: Proc;
  url: string;
  port: number;
  caFile: string;
  adminToken: string;
  dataDir: string;
  args: string[];
  startOptions: CloudStartOptions;
  api<T = Record<string, unknown>>(
    method: string,
    path: string,
    body?: unknown,
    token?: string | null,
  ): Promise<{ status: number; body: T }>;
  stop(): Promise<void>;
}

export interface CloudStartOptions {
  /** The cloud's open-file limit (`ulimit -n`), e.g. to show it never runs out of descriptors. */
  fdLimit?: number;
  /**
   * Webhooks to loopback receivers (`--allow-private-webhooks`): on by default here, since the
   * demo's and the tests' receivers are on loopback. `false` starts the cloud as it ships.
   */
  privateWebhooks?: boolean;
}

export async function startCloud(
  args: string[] = [],
  dataDir = tempDir('cloud'),
  opts: CloudStartOptions = {},
): Promise<Cloud> {
  const flags = opts.privateWebhooks === false ? [] : ['--allow-private-webhooks'];
  const proc = start(POSAGENT_CLOUD, ['serve', '--data-dir', dataDir, ...flags, ...args], {}, opts);
  const line = await waitFor(() => {
    if (proc.child.exitCode !== null) throw new Error(`cloud exited: ${proc.stderr()}`);
    return proc.output().split('\n')[0]?.trim() && proc.output().includes('\n')
      ? proc.output().split('\n')[0]
      : undefined;
  }, 'the cloud ready line');
  const ready = JSON.parse(line!) as { url: string; caFile: string; adminTokenFile: string };
  const adminToken = readFileSync(ready.adminTokenFile, 'utf8').trim();
  const ca = readFileSync(ready.caFile, 'utf8');
  const cloud: Cloud = {
    proc,
    url: ready.url,
    port: Number(new URL(ready.url).port),
    caFile: ready.caFile,
    adminToken,
    dataDir,
    args,
    startOptions: opts,
    api: (method, path, body, token = adminToken) => httpsJson(ready.url, ca, method, path, body, token),
    async stop() {
      if (proc.child.exitCode === null) {
        proc.child.kill('SIGTERM');
        await proc.exited;
      }
    },
  };
  return cloud;
}

/** `posagent-cloud user add NAME --role ROLE` through the binary, the password on stdin. */
export function addOperator(
  cloud: Pick<Cloud, 'dataDir'>,
  name: string,
  role: 'admin' | 'support',
  password: string,
): Promise<{ name: string; role: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [
      POSAGENT_CLOUD,
      'user',
      'add',
      name,
      '--role',
      role,
      '--data-dir',
      cloud.dataDir,
    ]);
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('exit', (code) =>
      code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`user add exited ${code}: ${err}${out}`)),
    );
    p.stdin.end(`${password}\n`);
  });
}

/** Starts the same cloud again (same data dir, same port), as after a restart. */
export function restartCloud(c: Cloud): Promise<Cloud> {
  return startCloud(
    [...c.args.filter((_, i, a) => a[i] !== '--port' && a[i - 1] !== '--port'), '--port', String(c.port)],
    c.dataDir,
    c.startOptions,
  );
}

export function httpsJson<T>(
  base: string,
  ca: string,
  method: string,
  path: string,
  body?: unknown,
  token?: string | null,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: T }> {
  // A Buffer goes as it is (a release tarball); anything else as JSON.
  const raw = Buffer.isBuffer(body);
  const payload = body === undefined ? undefined : raw ? body : JSON.stringify(body);
  return new Promise((resolvePromise, reject) => {
    const req = request(
      new URL(path, base),
      {
        method,
        ca,
        headers: {
          ...(payload ? { 'content-type': raw ? 'application/octet-stream' : 'application/json' } : {}),
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolvePromise({ status: res.statusCode ?? 0, body: (text ? JSON.parse(text) : {}) as T });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** An admin GET whose answer is not JSON (the QR PNG). */
export function httpsBinary(
  cloud: Pick<Cloud, 'url' | 'caFile' | 'adminToken'>,
  path: string,
): Promise<{ status: number; contentType: string; body: Buffer }> {
  return new Promise((resolvePromise, reject) => {
    const req = request(
      new URL(path, cloud.url),
      { ca: readFileSync(cloud.caFile, 'utf8'), headers: { authorization: `Bearer ${cloud.adminToken}` } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolvePromise({
            status: res.statusCode ?? 0,
            contentType: String(res.headers['content-type']),
            body: Buffer.concat(chunks),
          }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** A location and a fresh enrollment code in it. */
export async function newEnrollmentCode(
  cloud: Cloud,
  terminalName = 'Front Register 1',
  ttlSeconds?: number,
) {
  const loc = await cloud.api<{ id: string }>('POST', '/v1/locations', { name: 'Acme Coffee' });
  const code = await cloud.api<{ code: string; expiresAt: number }>('POST', '/v1/enrollment-codes', {
    locationId: loc.body.id,
    terminalName,
    ...(ttlSeconds === undefined ? {} : { ttlSeconds }),
  });
  if (code.status !== 201) throw new Error(`code creation failed: ${JSON.stringify(code.body)}`);
  return { locationId: loc.body.id, code: code.body.code, expiresAt: code.body.expiresAt };
}

export interface AgentDirs {
  stateDir: string;
  runtimeDir: string;
  flags: string[];
}

export function agentDirs(): AgentDirs {
  const base = tempDir('agent');
  const stateDir = join(base, 'state');
  const runtimeDir = join(base, 'run');
  // An explicit settings file: tests never pick up /etc/posagent/agent.json, and a reboot action
  // sent to a test agent without a fake reboot command fails instead of rebooting this machine.
  writeFileSync(
    join(base, 'agent.json'),
    `${JSON.stringify({ rebootCommand: 'echo "no reboot command configured for this test agent" >&2; exit 1' })}\n`,
  );
  return { stateDir, runtimeDir, flags: ['--state-dir', stateDir, '--runtime-dir', runtimeDir] };
}

/**
 * A copy of a terminal's state (identity, store, settings) under new dirs, to break on purpose
 * without touching the original; the daemon must be stopped. The key directory keeps its 0700.
 */
export function copyAgentState(from: AgentDirs, prefix = 'copy'): AgentDirs {
  const base = tempDir(prefix);
  const dirs = {
    stateDir: join(base, 'state'),
    runtimeDir: join(base, 'run'),
    flags: ['--state-dir', join(base, 'state'), '--runtime-dir', join(base, 'run')],
  };
  cpSync(from.stateDir, dirs.stateDir, { recursive: true });
  chmodSync(join(dirs.stateDir, 'keys'), 0o700);
  cpSync(join(from.stateDir, '..', 'agent.json'), join(base, 'agent.json'));
  return dirs;
}

/** `posagent enroll --cloud … --ca-file … --code CODE` against a cloud (`--json` unless `human`). */
export function enrollWithCli(
  cloud: Pick<Cloud, 'url' | 'caFile'>,
  code: string,
  dirs: AgentDirs,
  opts: { human?: boolean; caFile?: string; env?: Record<string, string>; extraArgs?: string[] } = {},
): Promise<CliResult> {
  const args = [
    'enroll',
    '--cloud',
    cloud.url,
    '--ca-file',
    opts.caFile ?? cloud.caFile,
    '--code',
    code,
    ...(opts.extraArgs ?? []),
    ...dirs.flags,
  ];
  return cli(opts.human ? args : [...args, '--json'], opts.env);
}

export async function enrollAgent(cloud: Cloud, dirs: AgentDirs = agentDirs()) {
  const { code, locationId } = await newEnrollmentCode(cloud);
  const r = await enrollWithCli(cloud, code, dirs);
  if (r.code !== 0) throw new Error(`enroll failed (${r.code}): ${r.stdout} ${r.stderr}`);
  return {
    dirs,
    locationId,
    terminalId: r.json<{ terminalId: string }>().terminalId,
    enrollOutput: r.stdout + r.stderr,
  };
}

/** Device settings that keep reconnects quick in tests (the defaults are for fleets). */
export const FAST_RECONNECT = {
  POSAGENT_RECONNECT_BASE_MS: '100',
  POSAGENT_RECONNECT_CAP_MS: '1000',
  POSAGENT_RESTART_SPREAD_MS: '500',
};

export function startAgent(
  dirs: AgentDirs,
  extraArgs: string[] = [],
  env: Record<string, string> = FAST_RECONNECT,
  opts: StartOptions = {},
): Proc {
  return start(
    POSAGENT,
    ['run', ...dirs.flags, '--settings', join(dirs.stateDir, '..', 'agent.json'), ...extraArgs],
    env,
    opts,
  );
}

/** Waits until `posagent status --json` shows a link state that satisfies `ok` (default: online). */
export function waitForLink(
  dirs: AgentDirs,
  ok: (state: string) => boolean = (s) => s === 'online',
  timeoutMs?: number,
): Promise<string> {
  return waitFor(
    async () => {
      const state = (await cli(['status', '--json', ...dirs.flags])).json<{ link: { state: string } }>().link
        .state;
      return ok(state) ? state : undefined;
    },
    'the link state',
    timeoutMs,
  );
}

/** `POST /v1/terminals/{id}/configure`, then waits until the terminal applied that version. */
export async function configureAndWait(cloud: Cloud, terminalId: string, patch: unknown): Promise<number> {
  const r = await cloud.api('POST', `/v1/terminals/${terminalId}/configure`, patch);
  if (r.status !== 200) throw new Error(`configure failed: ${JSON.stringify(r.body)}`);
  return waitFor(async () => {
    const c = (
      await cloud.api<{ version: number; appliedVersion: number | null }>(
        'GET',
        `/v1/terminals/${terminalId}/config`,
      )
    ).body;
    return c.appliedVersion === c.version ? c.version : undefined;
  }, 'the config applied');
}

export async function terminalStatus(cloud: Cloud, id: string): Promise<string> {
  const r = await cloud.api<{ status: string }>('GET', `/v1/terminals/${id}`);
  return r.body.status;
}

/** A terminal action as the cloud's REST API shows it. */
export interface CloudAction {
  id: string;
  object: 'terminal_action';
  type: string;
  status: string;
  step: string | null;
  reason: string | null;
  params: Record<string, unknown>;
  /** collect_logs, once completed: where its bundle is. */
  logs?: string;
}

/** `POST /v1/terminals/{id}/actions`; throws unless the cloud queued it (201). */
export async function queueAction(
  cloud: Cloud,
  terminalId: string,
  body: Record<string, unknown>,
): Promise<CloudAction> {
  const r = await cloud.api<CloudAction>('POST', `/v1/terminals/${terminalId}/actions`, body);
  if (r.status !== 201) throw new Error(`action not queued (${r.status}): ${JSON.stringify(r.body)}`);
  return r.body;
}

export async function getAction(cloud: Cloud, terminalId: string, actionId: string): Promise<CloudAction> {
  return (await cloud.api<CloudAction>('GET', `/v1/terminals/${terminalId}/actions/${actionId}`)).body;
}

/** Polls an action until `ok` holds for it. */
export function waitForAction(
  cloud: Cloud,
  terminalId: string,
  actionId: string,
  ok: (a: CloudAction) => boolean,
  what: string,
  timeoutMs?: number,
): Promise<CloudAction> {
  return waitFor(
    async () => {
      const a = await getAction(cloud, terminalId, actionId);
      return ok(a) ? a : undefined;
    },
    what,
    timeoutMs,
  );
}
