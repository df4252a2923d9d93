import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import { ROOT } from '../harness/local-fleet.js';
import { cpuSeconds } from './process-metrics.js';

/**
 * TLS handshakes per second per cloud core: a load of mTLS handshakes against the cloud's TLS
 * (handshake-server.ts, its own process), counted over the server's own CPU seconds (/proc), so
 * the figure is the cloud's cost whatever the client's share of this machine. `full`: no session
 * offered; `resumed`: every connection offers the first connection's session ticket (counted only
 * when resumed), as each agent of a storm offers its own once. Either way a connection is closed as
 * soon as its handshake is done. `bare` is the floor: a plain node:tls server (P-256 server
 * certificate, no client certificate, no checks of ours) — what Node itself costs per connection.
 */
export interface HandshakeRate {
  perCoreSecond: number;
  handshakes: number;
  /** Of the connections, how many resumed (resumed mode: should be all). */
  resumedShare: number;
  serverCpuSec: number;
}

interface ServerInfo {
  port: number;
  ca: string;
  cert: string;
  key: string;
}

/**
 * The handshake server (handshake-server.ts) in its own process, and the lines it prints: the
 * first is its port and the terminal credentials, then one answer per line asked on stdin (hold mode).
 */
function startHandshakeServer(args: string[]) {
  const child = spawn(process.execPath, [join(ROOT, 'dist/bench/handshake-server.js'), ...args], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines: string[] = [];
  const waiting: { resolve: (l: string) => void; reject: (e: Error) => void }[] = [];
  let buf = '';
  child.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      const w = waiting.shift();
      if (w) w.resolve(line);
      else lines.push(line);
    }
  });
  child.once('exit', (code) => {
    for (const w of waiting.splice(0)) w.reject(new Error(`handshake server exited ${code}`));
  });
  const next = () =>
    new Promise<string>((resolve, reject) =>
      lines.length ? resolve(lines.shift()!) : waiting.push({ resolve, reject }),
    );
  return { child, next, info: async () => JSON.parse(await next()) as ServerInfo };
}

/** A client connection to it with the terminal's credentials (and a session to offer). */
function connectTo(info: ServerInfo, session?: Buffer): TLSSocket {
  return connect({
    host: '127.0.0.1',
    port: info.port,
    servername: 'localhost',
    ca: info.ca,
    cert: info.cert,
    key: info.key,
    ...(session ? { session } : {}),
  });
}

export async function handshakeRate(
  kind: 'p256' | 'rsa' | 'bare',
  mode: 'full' | 'resumed',
  seconds: number,
  inFlight = 16,
): Promise<HandshakeRate> {
  const { child, info: serverInfo } = startHandshakeServer([kind]);
  try {
    const info = await serverInfo();
    let session: Buffer | undefined;
    const once = () =>
      new Promise<boolean>((resolve) => {
        const s = connectTo(info, mode === 'resumed' ? session : undefined);
        // The first ticket is kept (TLS 1.3 sends it after the handshake, once the client reads).
        const waitingForTicket = mode === 'resumed' && !session;
        s.on('session', (t: Buffer) => {
          session ??= t;
          if (waitingForTicket) s.destroy();
        });
        s.once('secureConnect', () => {
          const reused = s.isSessionReused();
          resolve(reused);
          if (waitingForTicket) s.resume();
          else s.destroy();
        });
        s.once('close', () => resolve(false));
        s.once('error', () => resolve(false));
      });
    if (mode === 'resumed') {
      // One full handshake to get the ticket.
      await once();
      const until = Date.now() + 5000;
      while (!session) {
        if (Date.now() > until) throw new Error('the handshake server sent no session ticket in 5 s');
        await new Promise((r) => setTimeout(r, 10));
      }
    }
    const cpu0 = cpuSeconds(child.pid!);
    const end = Date.now() + seconds * 1000;
    let total = 0;
    let resumed = 0;
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        while (Date.now() < end) {
          const r = await once();
          total++;
          if (r) resumed++;
        }
      }),
    );
    const serverCpuSec = cpuSeconds(child.pid!) - cpu0;
    const counted = mode === 'resumed' ? resumed : total;
    return {
      perCoreSecond: serverCpuSec > 0 ? counted / serverCpuSec : Number.NaN,
      handshakes: counted,
      resumedShare: total ? resumed / total : 0,
      serverCpuSec,
    };
  } finally {
    child.kill('SIGKILL');
  }
}

/**
 * What Node's TLS alone costs per connection held open: the handshake server of the cloud's TLS
 * (P-256 mTLS, its policy and ticket options, its certificate check) holding `n` idle connections
 * of one client certificate, each having sent a few bytes; its RSS and V8 heap before and after,
 * per connection. The reference for the fleet simulator's cloud RSS per terminal.
 */
export async function heldConnectionCost(
  n: number,
): Promise<{ rssPerConnectionKb: number; heapPerConnectionKb: number; held: number }> {
  const { child, next, info: serverInfo } = startHandshakeServer(['p256', 'hold']);
  const sockets: TLSSocket[] = [];
  try {
    const info = await serverInfo();
    const sample = async () => {
      child.stdin.write('?\n');
      return JSON.parse(await next()) as { rss: number; heapUsed: number; held: number };
    };
    await new Promise((r) => setTimeout(r, 500));
    const before = await sample();
    let opened = 0;
    await Promise.all(
      Array.from({ length: 50 }, async () => {
        while (opened < n) {
          opened++;
          await new Promise<void>((resolve) => {
            const s = connectTo(info);
            s.once('error', () => resolve());
            s.once('secureConnect', () => {
              s.write('ping');
              sockets.push(s);
              resolve();
            });
          });
        }
      }),
    );
    await new Promise((r) => setTimeout(r, 2000));
    const after = await sample();
    const per = (a: number, b: number) => Math.round((a - b) / Math.max(1, after.held) / 102.4) / 10;
    return {
      rssPerConnectionKb: per(after.rss, before.rss),
      heapPerConnectionKb: per(after.heapUsed, before.heapUsed),
      held: after.held,
    };
  } finally {
    for (const s of sockets) s.destroy();
    child.kill('SIGKILL');
  }
}
