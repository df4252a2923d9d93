import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { type Socket, connect as tcpConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enrollByApi } from '../support/api-terminal.js';
import {
  type Cloud,
  cli,
  enrollAgent,
  type Proc,
  startAgent,
  startCloud,
  waitForLink,
} from '../support/processes.js';
import { openRawLink } from '../support/raw-link.js';
import { startRestProbe } from '../support/rest-probe.js';
import { waitFor } from '../support/wait-for.js';

const ATTACKER = '127.0.0.2';
// Long enough that the first 256 hold the per-source cap while the rest of the flood is sent
// (a few seconds on a busy machine), short enough for the test.
const LIMITS = {
  handshake: 6000,
  headers: 7000,
  request: 9000,
  keepAlive: 1500,
  idle: 8000,
  perSource: 256,
};
/** Past a timeout, Node checks every headers/4 (≤ 1 s); a busy machine adds some. */
const MARGIN = 2500;

interface Tracked {
  kind: string;
  openedAt: number;
  /** TCP connected. */
  connectedAt?: number;
  /** Ready to use: TCP connected (raw) or TLS handshake done. */
  readyAt?: number;
  closedAt?: number;
}

/**
 * Issue 17.4: connection limits and timeouts. 2,000 idle and slow connections from one source
 * (the cloud at 1,024 descriptors, as in the report that got ECONNRESET for everyone): the
 * per-source cap closes what is past it at once, each class of the accepted ones is closed by
 * its timeout, and legitimate REST calls and agent links from elsewhere are served all along.
 */
describe('connection limits and timeouts', () => {
  let cloud: Cloud;
  let agent: Proc;
  let enrolled: Awaited<ReturnType<typeof enrollAgent>>;
  let other: { id: string; key: string; cert: string };
  const sockets: Socket[] = [];

  beforeAll(async () => {
    cloud = await startCloud(
      [
        '--handshake-timeout-ms',
        String(LIMITS.handshake),
        '--headers-timeout-ms',
        String(LIMITS.headers),
        '--request-timeout-ms',
        String(LIMITS.request),
        '--keep-alive-timeout-ms',
        String(LIMITS.keepAlive),
        '--idle-timeout-ms',
        String(LIMITS.idle),
        '--max-connections-per-source',
        String(LIMITS.perSource),
      ],
      undefined,
      { fdLimit: 1024 },
    );
    enrolled = await enrollAgent(cloud);
    agent = startAgent(enrolled.dirs);
    await waitForLink(enrolled.dirs);
    other = await enrollByApi(cloud, 'Till L');
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    agent?.child.kill('SIGKILL');
    await cloud?.stop();
  });

  it('2,000 idle/slow connections from one source: the ones past the cap closed at once, the others by their timeouts; REST calls and agent links still served', async () => {
    const ca = readFileSync(cloud.caFile, 'utf8');
    const tracked: Tracked[] = [];
    const track = (kind: string, s: Socket, t: Tracked = { kind, openedAt: performance.now() }) => {
      tracked.push(t);
      sockets.push(s);
      s.on('data', () => {}); // read, so the server's close is seen
      s.on('error', () => {});
      s.on('connect', () => {
        t.connectedAt = performance.now();
      });
      s.on('close', () => {
        t.closedAt = performance.now();
      });
      return t;
    };
    const tcp = (kind: string) => {
      const s = tcpConnect({ host: '127.0.0.1', port: cloud.port, localAddress: ATTACKER });
      const t = track(kind, s);
      s.on('connect', () => {
        t.readyAt = performance.now();
      });
    };
    const tls = (kind: string, after?: (s: Socket) => void) => {
      const t: Tracked = { kind, openedAt: performance.now() };
      // The TCP socket from the attacker's address, TLS on top of it.
      const raw = tcpConnect({ host: '127.0.0.1', port: cloud.port, localAddress: ATTACKER });
      raw.on('connect', () => {
        t.connectedAt = performance.now();
      });
      const s = tlsConnect({ socket: raw, ca, servername: 'localhost' }, () => {
        t.readyAt = performance.now();
        after?.(s);
      });
      raw.on('error', () => {});
      track(kind, s, t);
    };
    const slowly = (s: Socket, head: string, drip: string) => {
      s.write(head);
      const timer = setInterval(() => (s.writable ? s.write(drip) : clearInterval(timer)), 300);
      s.on('close', () => clearInterval(timer));
    };

    // Within the cap: 64 of each kind, all held open until the cloud closes them.
    for (let i = 0; i < 64; i++) {
      tcp('idle TCP');
      tls('idle TLS');
      tls('slow headers', (s) => slowly(s, 'GET /v1/terminals HTTP/1.1\r\nHost: cloud\r\n', 'X-Drip: 1\r\n'));
      tls('slow body', (s) =>
        slowly(
          s,
          // Within the 64 KiB a JSON body may be (a larger declared length is refused at once, 413).
          'POST /v1/pairings HTTP/1.1\r\nHost: cloud\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n',
          ' ',
        ),
      );
    }
    await waitFor(
      () => tracked.every((t) => t.readyAt !== undefined),
      'the first 256 connections up',
      30_000,
    );

    // Legitimate traffic from another address while the rest of the flood comes in.
    const probe = await startRestProbe(cloud);
    const flood = performance.now();
    const inFlood = () => tracked.filter((t) => t.kind === 'past the cap');
    for (let wave = 0; wave < 8; wave++) {
      for (let i = 0; i < 218; i++) (i % 4 === 0 ? tls : tcp)('past the cap');
      // Each wave answered (connected or closed) before the next, so the listen queue never overflows.
      await waitFor(
        () => inFlood().every((t) => t.connectedAt !== undefined || t.closedAt !== undefined),
        'the wave answered',
        20_000,
      );
    }
    const floodMs = Math.round(performance.now() - flood);
    const link = await openRawLink(cloud, other);
    const hello = await link.hello(other.id);
    link.close();
    const rest = await cloud.api<{ connected: boolean; status: string }>(
      'GET',
      `/v1/terminals/${enrolled.terminalId}`,
    );
    await waitFor(
      () => tracked.every((t) => t.closedAt !== undefined),
      'every attacking connection closed',
      30_000,
    );
    const figures = await probe.stop();

    expect(tracked).toHaveLength(2000);
    // Refused at the cap, before TLS: closed sooner after the TCP connection than any timeout could
    // have closed it (the shortest is the handshake's). Not "within a second": on a loaded machine
    // this process sees the close late, and that is the test's delay, not the cloud's.
    const refusedAtOnce = inFlood().filter(
      (t) => t.closedAt! - (t.connectedAt ?? t.openedAt) < LIMITS.handshake - 250,
    ).length;
    const lifetimes = (kind: string) =>
      tracked.filter((t) => t.kind === kind).map((t) => Math.round(t.closedAt! - (t.readyAt ?? t.openedAt)));
    const summary = Object.fromEntries(
      ['idle TCP', 'idle TLS', 'slow headers', 'slow body', 'past the cap'].map((k) => {
        const l = lifetimes(k);
        return [k, { n: l.length, min: Math.min(...l), max: Math.max(...l) }];
      }),
    );
    console.log(
      `connection flood from ${ATTACKER} (cloud ulimit -n 1024): lifetimes ms ${JSON.stringify(summary)}; flood sent in ${floodMs} ms, ${refusedAtOnce} of it closed at once; REST probe from 127.0.0.1 during: ${JSON.stringify(figures)}`,
    );
    // Each accepted kind lives until its timeout, not much longer.
    const bounds: [string, number][] = [
      ['idle TCP', LIMITS.handshake],
      ['idle TLS', LIMITS.headers],
      ['slow headers', LIMITS.headers],
      ['slow body', LIMITS.request],
    ];
    for (const [kind, timeout] of bounds) {
      expect(summary[kind]!.n, kind).toBe(64);
      // The cloud's timer starts at its accept; this side's clock at its connect callback, which a
      // busy test process (2,000 sockets of its own) runs late — so a lifetime reads short by that.
      expect(summary[kind]!.min, kind).toBeGreaterThanOrEqual(timeout - 500);
      expect(summary[kind]!.max, kind).toBeLessThanOrEqual(timeout + MARGIN);
    }
    // Past the per-source cap: closed at once while the cap is full; what got in as the first
    // ones timed out (idle) was closed by its timeout in turn.
    expect(summary['past the cap']!.n).toBe(8 * 218);
    expect(refusedAtOnce).toBeGreaterThanOrEqual(1500);
    expect(summary['past the cap']!.max).toBeLessThanOrEqual(LIMITS.headers + MARGIN);

    // Legitimate calls and links were served throughout.
    expect(figures.errors).toBe(0);
    expect(figures.count).toBeGreaterThan(50);
    expect(hello[0]).toBe(3);
    expect(rest.body).toMatchObject({ connected: true, status: 'online' });
    expect((await cli(['status', '--json', ...enrolled.dirs.flags])).json()).toMatchObject({
      link: { state: 'online' },
    });
    expect(cloud.proc.stderr()).toMatch(/connections refused: 256 connections open from this source/);
    expect(cloud.proc.child.exitCode).toBeNull();
  });

  it("listens with a backlog of 4,096 (the kernel's somaxconn caps it), not Node's 511: a fleet reconnecting at once is not left to SYN retransmits", () => {
    const somaxconn = Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8'));
    // `ss` shows a listening socket's backlog as its Send-Q.
    const line = execFileSync('ss', ['-Hltn', `sport = :${cloud.port}`], { encoding: 'utf8' }).trim();
    const [, , sendQ] = line.split(/\s+/);
    expect(Number(sendQ)).toBe(Math.min(4096, somaxconn));
  });
});
