import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localApiRequest, subscribeEvents } from '../../agent/local-api/local-api-client.js';
import {
  type Cloud,
  enrollAgent,
  type Proc,
  startAgent,
  startCloud,
  waitForLink,
} from '../support/processes.js';
import { waitFor } from '../support/wait-for.js';

/**
 * Issue 18.1: a local app cannot kill or bloat the daemon. The real daemon under systemd's
 * `LimitNOFILE=4096` (`ulimit -n` in /bin/sh), a real cloud, real connections on the socket.
 */
const NOFILE = 4096;

interface StreamAttempt {
  status: number | null;
  code?: string;
  error?: string;
  close?: () => void;
}

/** One `GET /v1/events`: 200 (kept open, read) or the refusal's status and code. */
function openStream(socketPath: string): Promise<StreamAttempt> {
  return new Promise((resolve) => {
    const req = request({ socketPath, method: 'GET', path: '/v1/events', agent: false }, (res) => {
      if (res.statusCode === 200) {
        res.resume();
        resolve({ status: 200, close: () => req.destroy() });
        return;
      }
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        let code: string | undefined;
        try {
          code = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { error: { code: string } }).error
            .code;
        } catch {
          // no JSON body
        }
        resolve({ status: res.statusCode ?? null, ...(code ? { code } : {}) });
      });
    });
    req.on('error', (err: NodeJS.ErrnoException) =>
      resolve({ status: null, error: err.code ?? err.message }),
    );
    req.end();
  });
}

const openFds = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;
const rssBytes = (pid: number) =>
  Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;

describe('local API under a misbehaving app', () => {
  let cloud: Cloud;
  let agent: Proc;
  let a: Awaited<ReturnType<typeof enrollAgent>>;
  const socket = () => `${a.dirs.runtimeDir}/api.sock`;
  const sale = (amount = 1000) =>
    localApiRequest<{ id: string; seq: number; error?: { code: string } }>(
      socket(),
      'POST',
      '/v1/transactions',
      {
        id: randomUUID(),
        amount,
        currency: 'EUR',
      },
    );
  const lastHeartbeat = async () =>
    (await localApiRequest<{ link: { lastHeartbeatAt: string | null } }>(socket(), 'GET', '/v1/status')).body
      .link.lastHeartbeatAt;

  beforeAll(async () => {
    cloud = await startCloud(['--heartbeat-interval', '1']);
    a = await enrollAgent(cloud);
    agent = startAgent(a.dirs, [], undefined, { fdLimit: NOFILE });
    await waitForLink(a.dirs);
  });
  afterAll(async () => {
    agent?.child.kill('SIGKILL');
    await cloud?.stop();
  });

  it(`4,300 event streams under LimitNOFILE=${NOFILE}: the daemon lives, sales get 201, refused streams get the cap's code`, async () => {
    const pid = agent.child.pid!;
    const held: StreamAttempt[] = [];
    const raw: Socket[] = [];
    try {
      await flood(pid, held, raw);
    } finally {
      for (const s of raw) s.destroy();
      for (const h of held) h.close?.();
    }
  });

  async function flood(pid: number, held: StreamAttempt[], raw: Socket[]): Promise<void> {
    expect(readFileSync(`/proc/${pid}/limits`, 'utf8')).toMatch(new RegExp(`Max open files\\s+${NOFILE}\\s`));
    const refused = new Map<string, number>();
    let maxFds = 0;
    // 4,300 streams asked for and never closed by the app, 200 in flight at a time.
    for (let sent = 0; sent < 4300; sent += 200) {
      const wave = await Promise.all(
        Array.from({ length: Math.min(200, 4300 - sent) }, () => openStream(socket())),
      );
      maxFds = Math.max(maxFds, openFds(pid));
      for (const w of wave) {
        if (w.status === 200) held.push(w);
        else {
          const key = `${w.status ?? w.error} ${w.code ?? ''}`.trim();
          refused.set(key, (refused.get(key) ?? 0) + 1);
        }
      }
    }
    // The stream cap (64 with this limit) is what is held; every other stream was refused with a
    // code: the stream cap's, or the connection cap's while the refused ones were still closing.
    expect(held.length).toBe(64);
    const refusals = Object.fromEntries(refused);
    for (const key of Object.keys(refusals)) expect(key).toMatch(/^503 too_many_(streams|connections)$/);
    expect(refusals['503 too_many_streams']).toBeGreaterThan(4000);
    expect(Object.values(refusals).reduce((x, y) => x + y, 0)).toBe(4300 - 64);
    // Descriptors: far from the limit, the reserve for the store, the link and the log untouched.
    expect(maxFds).toBeLessThan(NOFILE - 256);

    // With all 64 streams still open: sales go through, and the next heartbeats are sent.
    for (let i = 0; i < 5; i++) expect((await sale()).status).toBe(201);
    const before = await lastHeartbeat();
    await waitFor(
      async () => ((await lastHeartbeat()) !== before ? true : undefined),
      'a heartbeat after the flood',
    );
    expect(agent.child.exitCode).toBeNull();

    // A flood of raw connections that never send a request: past the hard cap they are closed at
    // once, past the soft cap answered 503 too_many_connections; the daemon's descriptors stay bounded.
    for (let i = 0; i < 1500; i++) {
      const s = connect(socket());
      s.on('error', () => {});
      raw.push(s);
    }
    await waitFor(
      () => (raw.every((s) => !s.connecting) ? true : undefined),
      'the raw connections accepted or refused',
    );
    maxFds = Math.max(maxFds, openFds(pid));
    expect(openFds(pid)).toBeLessThan(1024 + 100);
    for (const s of raw) s.destroy();
    for (const h of held) h.close?.();
    await waitFor(
      async () => ((await sale().catch(() => null))?.status === 201 ? true : undefined),
      'a sale after the flood',
    );
    expect(agent.child.exitCode).toBeNull();
    expect(agent.output()).not.toMatch(/EMFILE/);
    console.log(
      `[18.1] streams held ${held.length}, refused ${JSON.stringify(refusals)}; daemon fds at most ${maxFds} (limit ${NOFILE})`,
    );
  }

  it('200 paused readers + 2,000 sales: readers that do not read are dropped, RSS grows ≤ 20 MB, a reading reader gets every event', async () => {
    const pid = agent.child.pid!;
    const live = await subscribeEvents(socket());
    // 200 readers that ask for the stream and then never read (the kernel buffers fill, then ours).
    const paused: Socket[] = [];
    const admitted: Socket[] = [];
    await Promise.all(
      Array.from(
        { length: 200 },
        () =>
          new Promise<void>((resolve) => {
            const s = connect(socket(), () => s.write('GET /v1/events HTTP/1.1\r\nHost: posagent\r\n\r\n'));
            s.on('error', () => resolve());
            s.once('data', (d: Buffer) => {
              s.pause();
              if (d.toString().startsWith('HTTP/1.1 200')) admitted.push(s);
              resolve();
            });
            paused.push(s);
          }),
      ),
    );
    expect(admitted.length).toBeGreaterThan(30);
    // Warm-up, then the baseline.
    for (let i = 0; i < 200; i++) expect((await sale()).status).toBe(201);
    const rssBefore = rssBytes(pid);
    const ids: string[] = [];
    for (let i = 0; i < 2000; i++) {
      const r = await sale(1000 + (i % 50));
      expect(r.status).toBe(201);
      ids.push(r.body.id);
    }
    const rssAfter = rssBytes(pid);
    const growthMb = (rssAfter - rssBefore) / 1024 / 1024;
    console.log(
      `[18.1] ${admitted.length} paused readers admitted; RSS ${(rssBefore / 1048576).toFixed(1)} → ${(rssAfter / 1048576).toFixed(1)} MB (+${growthMb.toFixed(1)} MB) over 2,000 sales`,
    );
    expect(growthMb).toBeLessThanOrEqual(20);
    // Every paused reader that was admitted was dropped by the daemon: resumed now, each ends.
    await Promise.all(
      admitted.map(
        (s) =>
          new Promise<void>((resolve) => {
            s.on('close', () => resolve());
            s.resume();
          }),
      ),
    );
    const dropped = agent.output().match(/event stream reader dropped/g)?.length ?? 0;
    expect(dropped).toBeGreaterThanOrEqual(admitted.length);
    // The reader that reads got the stored event of every sale, in order.
    await waitFor(() => {
      const stored = live.events.filter(
        (e) => e.event === 'transaction' && (e.data as { state: string }).state === 'stored',
      );
      return stored.length >= 2200 ? stored : undefined;
    }, 'every sale on the live stream');
    const stored = live.events
      .filter((e) => e.event === 'transaction' && (e.data as { state: string }).state === 'stored')
      .map((e) => (e.data as { id: string }).id);
    expect(stored.slice(200)).toEqual(ids);
    live.close();
    for (const s of paused) s.destroy();
  });

  it('an app that reconnects with Last-Event-ID gets the events it missed; from an earlier run it is told it missed some', async () => {
    const first = await subscribeEvents(socket());
    const before = await sale();
    await waitFor(
      () => (first.events.some((e) => (e.data as { id?: string }).id === before.body.id) ? true : undefined),
      'the first sale on the stream',
    );
    const lastSeen = first.lastEventId()!;
    first.close();
    // While the app is away: three sales, each stored, forwarded and decided.
    const missed = [await sale(), await sale(), await sale()].map((r) => r.body.id);
    await waitFor(async () => {
      const states = await Promise.all(
        missed.map(
          async (id) =>
            (await localApiRequest<{ state: string }>(socket(), 'GET', `/v1/transactions/${id}`)).body.state,
        ),
      );
      return states.every((s) => s === 'authorised') ? true : undefined;
    }, 'the missed sales decided');
    const again = await subscribeEvents(socket(), undefined, { lastEventId: lastSeen });
    await waitFor(
      () =>
        missed.every((id) =>
          again.events.some(
            (e) =>
              (e.data as { id?: string; state?: string }).id === id &&
              (e.data as { state: string }).state === 'authorised',
          ),
        )
          ? true
          : undefined,
      'the missed events replayed',
    );
    // Replayed in order, with no gap and nothing twice: ids follow the last one seen.
    const [run, n] = lastSeen.split('-');
    expect(again.events.slice(0, 3).map((e) => e.id)).toEqual(
      [1, 2, 3].map((k) => `${run}-${Number(n) + k}`),
    );
    for (const id of missed) {
      const states = again.events
        .filter((e) => (e.data as { id?: string }).id === id)
        .map((e) => (e.data as { state: string }).state);
      expect(states).toEqual(['stored', 'received', 'authorised']);
    }
    again.close();

    // The daemon restarts: its replay window is gone, and the app is told so.
    agent.child.kill('SIGTERM');
    await agent.exited;
    agent = startAgent(a.dirs, [], undefined, { fdLimit: NOFILE });
    await waitForLink(a.dirs);
    const afterRestart = await subscribeEvents(socket(), undefined, { lastEventId: lastSeen });
    await waitFor(
      () => (afterRestart.events.length > 0 ? true : undefined),
      'the first event after the restart',
    );
    expect(afterRestart.events[0]).toMatchObject({
      event: 'missed',
      data: { lastEventId: lastSeen, reason: 'restarted' },
    });
    afterRestart.close();
  });
});
