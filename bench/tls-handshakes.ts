import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { ROOT } from '../harness/local-fleet.js';
import { cpuSeconds } from './process-metrics.js';

/**
 * TLS handshakes per second per cloud core: a load of mTLS handshakes against the cloud's TLS
 * (handshake-server.ts, its own process), counted over the server's own CPU seconds (/proc), so
 * the figure is the cloud's cost whatever the client's share of this machine. `full`: no session
 * offered; `resumed`: every connection offers the last session ticket (counted only when resumed).
 */
export interface HandshakeRate {
  perCoreSecond: number;
  handshakes: number;
  /** Of the connections, how many resumed (resumed mode: should be all). */
  resumedShare: number;
  serverCpuSec: number;
}

export async function handshakeRate(
  kind: 'p256' | 'rsa',
  mode: 'full' | 'resumed',
  seconds: number,
  inFlight = 16,
): Promise<HandshakeRate> {
  const child = spawn(process.execPath, [join(ROOT, 'dist/bench/handshake-server.js'), kind], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const info = await new Promise<{ port: number; ca: string; cert: string; key: string }>(
      (resolve, reject) => {
        let out = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]!));
        });
        child.once('exit', (code) => reject(new Error(`handshake server exited ${code}`)));
      },
    );
    let session: Buffer | undefined;
    const once = () =>
      new Promise<boolean>((resolve) => {
        const s = connect({
          host: '127.0.0.1',
          port: info.port,
          servername: 'localhost',
          ca: info.ca,
          cert: info.cert,
          key: info.key,
          ...(mode === 'resumed' && session ? { session } : {}),
        });
        s.on('session', (t: Buffer) => {
          session = t;
        });
        s.once('secureConnect', () => {
          const reused = s.isSessionReused();
          if (mode === 'full') {
            s.destroy();
            return resolve(reused);
          }
          // Resumed mode keeps the ticket each connection brings (TLS 1.3 sends it after the
          // handshake, once the client reads): closed when it came, or after 100 ms without one.
          s.resume();
          const done = () => {
            clearTimeout(timer);
            s.destroy();
            resolve(reused);
          };
          const timer = setTimeout(done, 100);
          s.once('session', done);
        });
        s.once('error', () => resolve(false));
      });
    if (mode === 'resumed') {
      // One full handshake to get the first ticket.
      await once();
      await new Promise((r) => setTimeout(r, 50));
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
