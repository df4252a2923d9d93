import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { waitFor } from './wait-for.js';

/**
 * A real PostgreSQL server in a temp cluster, for the cloud's PostgreSQL store tests and the
 * multi-gateway fleet: Debian's server binaries (`apt-get install postgresql`, which .ci/run does),
 * `initdb` into a temp dir, `postgres` on a free loopback port, removed at `stop()`. As root (CI)
 * the cluster runs as the `postgres` user, since PostgreSQL refuses to run as root. POSAGENT_PG_BIN
 * names another bin dir. A missing server fails with what to install; it never skips.
 */
export interface TempPostgres {
  /** `postgres://posagent@127.0.0.1:PORT/posagent` (trust auth on loopback, for tests only). */
  url: string;
  port: number;
  dir: string;
  /** A new empty database in the cluster: its URL (one per test that needs a clean store). */
  createDatabase(name: string): Promise<string>;
  /** Fast shutdown, then the cluster is removed. */
  stop(): Promise<void>;
  /** SIGKILL, as a crashed database (the cluster stays for a restart). */
  kill(): Promise<void>;
  /** Starts the same cluster again on the same port (after stop without removal or kill). */
  restart(): Promise<void>;
}

export function postgresBinDir(): string {
  const explicit = process.env.POSAGENT_PG_BIN;
  if (explicit) return explicit;
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(join(root, v, 'bin', 'postgres')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions.length === 0)
    throw new Error(
      'the PostgreSQL tests need the server binaries: apt-get install postgresql (or set POSAGENT_PG_BIN to a bin dir with initdb and postgres)',
    );
  return join(root, versions[0]!, 'bin');
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** The uid/gid to run the server as: ours, or the postgres user's when we are root. */
function runAs(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    return { uid, gid };
  } catch {
    throw new Error(
      'running as root, the PostgreSQL tests start the server as the postgres user, and there is none: apt-get install postgresql makes it',
    );
  }
}

/** `settings`: more server settings (`name=value`, each given as `-c`), e.g. a preloaded library. */
export async function startPostgres(o: { settings?: string[] } = {}): Promise<TempPostgres> {
  const bin = postgresBinDir();
  const user = runAs();
  const dir = mkdtempSync(join(tmpdir(), 'posagent-pg-'));
  const data = join(dir, 'data');
  if (user) chownSync(dir, user.uid, user.gid);
  const opts = { ...(user ?? {}), cwd: dir, env: { ...process.env, LC_ALL: 'C' } };
  execFileSync(
    join(bin, 'initdb'),
    ['-D', data, '-U', 'posagent', '--auth=trust', '--no-sync', '-E', 'UTF8', '--no-instructions'],
    { ...opts, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const port = await freePort();
  let server: ChildProcess | undefined;
  let log = '';
  const launch = async () => {
    log = '';
    const child = spawn(
      join(bin, 'postgres'),
      [
        '-D',
        data,
        '-p',
        String(port),
        '-k',
        dir,
        '-c',
        'listen_addresses=127.0.0.1',
        '-c',
        'max_connections=200',
        // A test cluster: durability against a crashed machine is not what is tested, speed is. A
        // SIGKILLed server still has every commit (written to the WAL, in the OS cache) at restart.
        '-c',
        'fsync=off',
        '-c',
        'full_page_writes=off',
        ...(o.settings ?? []).flatMap((x) => ['-c', x]),
      ],
      { ...opts, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-20_000)));
    child.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-20_000)));
    server = child;
    await waitFor(
      () => {
        if (child.exitCode !== null) throw new Error(`postgres exited (${child.exitCode}): ${log}`);
        return log.includes('database system is ready to accept connections') || undefined;
      },
      'postgres ready',
      30_000,
    );
  };
  await launch();
  execFileSync(
    join(bin, 'createdb'),
    ['-h', '127.0.0.1', '-p', String(port), '-U', 'posagent', 'posagent'],
    opts,
  );
  const exited = (c: ChildProcess) =>
    c.exitCode !== null || c.signalCode !== null
      ? Promise.resolve()
      : new Promise<void>((r) => c.once('exit', () => r()));
  return {
    url: `postgres://posagent@127.0.0.1:${port}/posagent`,
    port,
    dir,
    async createDatabase(name: string) {
      if (!/^[a-z][a-z0-9_]{0,62}$/.test(name)) throw new Error(`not a database name: ${name}`);
      const c = new pg.Client({ connectionString: `postgres://posagent@127.0.0.1:${port}/posagent` });
      await c.connect();
      try {
        await c.query(`CREATE DATABASE ${name}`);
      } finally {
        await c.end();
      }
      return `postgres://posagent@127.0.0.1:${port}/${name}`;
    },
    async stop() {
      if (server) {
        server.kill('SIGINT');
        await exited(server);
      }
      rmSync(dir, { recursive: true, force: true });
    },
    async kill() {
      if (server) {
        server.kill('SIGKILL');
        await exited(server);
      }
    },
    restart: launch,
  };
}
