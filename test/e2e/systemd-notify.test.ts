import { createRequire } from 'node:module';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  agentDirs,
  type Cloud,
  enrollAgent,
  FAST_RECONNECT,
  type Proc,
  startAgent,
  startCloud,
  tempDir,
  waitForLink,
} from '../support/processes.js';
import { waitFor } from '../support/wait-for.js';

interface DgramServer {
  bind(path: string): void;
  on(event: 'message', cb: (msg: Buffer) => void): void;
  close(): void;
}
const { createSocket } = createRequire(import.meta.url)('unix-dgram') as {
  createSocket(type: 'unix_dgram'): DgramServer;
};

/** A real notify socket, as systemd makes one: every datagram the daemon sends, with its arrival time. */
function notifySocket() {
  const path = join(tempDir('notify'), 'notify.sock');
  const messages: { at: number; text: string }[] = [];
  const server = createSocket('unix_dgram');
  server.on('message', (msg) => messages.push({ at: Date.now(), text: msg.toString() }));
  server.bind(path);
  const watchdogs = () => messages.filter((m) => m.text === 'WATCHDOG=1').map((m) => m.at);
  return { path, messages, watchdogs, close: () => server.close() };
}

/**
 * Issue 9: sd_notify on a real NOTIFY_SOCKET — READY once the store, the local API and the first
 * link attempt are up; WATCHDOG from the event loop, through a cloud outage; none while the loop
 * is blocked; STOPPING on SIGTERM.
 */
describe('sd_notify', () => {
  let cloud: Cloud;
  let a: Awaited<ReturnType<typeof enrollAgent>>;
  let agent: Proc;
  const sock = notifySocket();

  beforeAll(async () => {
    cloud = await startCloud();
    a = await enrollAgent(cloud);
  });
  afterAll(async () => {
    agent?.child.kill('SIGKILL');
    sock.close();
    await cloud.stop();
  });

  it('READY, STATUS, WATCHDOG through a cloud outage, none while the loop is blocked, STOPPING', async () => {
    agent = startAgent(a.dirs, [], {
      ...FAST_RECONNECT,
      NOTIFY_SOCKET: sock.path,
      WATCHDOG_USEC: '400000', // a ping every 200 ms
      POSAGENT_BLOCK_LOOP_MS: '2000',
    });
    const ready = await waitFor(() => sock.messages.find((m) => m.text.startsWith('READY=1')), 'READY=1');
    expect(ready.text).toMatch(/^READY=1\nSTATUS=link (connecting|online)\nMAINPID=\d+$/);
    expect(ready.text).toContain(`MAINPID=${agent.child.pid}`);
    await waitForLink(a.dirs);
    await waitFor(() => sock.messages.some((m) => m.text === 'STATUS=link online'), 'STATUS=link online');
    await waitFor(() => sock.watchdogs().length >= 3, 'watchdog pings');

    // The cloud goes away: the link drops, the watchdog keeps pinging (liveness is not connectivity).
    await cloud.stop();
    await waitFor(
      () => sock.messages.some((m) => /^STATUS=link offline/.test(m.text)),
      'STATUS=link offline',
    );
    const offlineAt = Date.now();
    await waitFor(
      () => sock.watchdogs().filter((t) => t > offlineAt).length >= 5,
      'pings while the cloud is down',
    );

    // A stuck event loop: no pings for as long as it is stuck, then they resume.
    const before = sock.watchdogs().length;
    agent.child.kill('SIGUSR2');
    await waitFor(() => sock.watchdogs().length >= before + 3, 'pings after the loop is free again', 10_000);
    const times = sock.watchdogs().slice(before - 1);
    const longestGap = Math.max(...times.slice(1).map((t, i) => t - times[i]!));
    expect(longestGap).toBeGreaterThanOrEqual(1800); // blocked for 2 s; pings every 200 ms otherwise

    agent.child.kill('SIGTERM');
    await agent.exited;
    expect(sock.messages.some((m) => m.text.startsWith('STOPPING=1'))).toBe(true);
    cloud = await startCloud(); // for afterAll
  });

  it('a daemon that is not enrolled yet is ready too (it serves its status and waits)', async () => {
    const waiting = notifySocket();
    const dirs = agentDirs();
    const p = startAgent(dirs, [], { NOTIFY_SOCKET: waiting.path });
    try {
      const ready = await waitFor(
        () => waiting.messages.find((m) => m.text.startsWith('READY=1')),
        'READY=1',
      );
      expect(ready.text).toMatch(/STATUS=not enrolled/);
    } finally {
      p.child.kill('SIGKILL');
      waiting.close();
    }
  });
});
