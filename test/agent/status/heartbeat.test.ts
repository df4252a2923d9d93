import { describe, expect, it } from 'vitest';
import type { OnlineLink } from '../../../agent/link/cloud-link.js';
import type { HealthCollector } from '../../../agent/status/health.js';
import { HeartbeatSender } from '../../../agent/status/heartbeat.js';
import type { Heartbeat } from '../../../protocol/messages.js';
import { RpcSession } from '../../../protocol/rpc-session.js';
import { waitFor } from '../../support/wait-for.js';

/**
 * Issue 18.1/18.2: a heartbeat whose health probe throws (the process out of descriptors made
 * `process.memoryUsage` throw) is logged and skipped; the loop goes on and the next beat goes out.
 * The link is a real agent RPC session wired to a real cloud-side session.
 */
describe('heartbeat loop', () => {
  it('a beat that fails is logged with its error and the loop sends the next one', async () => {
    const received: Heartbeat[] = [];
    let cloud: RpcSession;
    const agent = new RpcSession({
      answers: 'cloudToAgent',
      handlers: {},
      send: (t) => queueMicrotask(() => cloud.receive(t)),
      newId: () => crypto.randomUUID(),
      callTimeoutMs: 1000,
    });
    cloud = new RpcSession({
      answers: 'agentToCloud',
      handlers: {
        Heartbeat: (p) => {
          received.push(p);
          return { serverTime: new Date().toISOString() };
        },
      },
      send: (t) => queueMicrotask(() => agent.receive(t)),
      newId: () => crypto.randomUUID(),
      callTimeoutMs: 1000,
    });
    let probes = 0;
    // Stands in for the OS failing a health probe (EMFILE): the one thing a test cannot own.
    const health = {
      collect: async () => {
        probes++;
        if (probes === 1)
          throw Object.assign(new Error('EMFILE: too many open files, uv_resident_set_memory'), {
            code: 'EMFILE',
          });
        return {
          uptimeSec: 1,
          battery: null,
          disk: { freeBytes: 1, totalBytes: 2 },
          memory: { freeBytes: 1, totalBytes: 2, agentRssBytes: 3 },
          temperatureC: null,
        };
      },
    } as unknown as HealthCollector;
    const errors: { obj: object; msg: string }[] = [];
    const sender = new HeartbeatSender({
      health,
      now: Date.now,
      queue: () => ({ stored: 0, oldestAt: null }),
      onSent: () => {},
      log: { warn: () => {}, error: (obj, msg) => errors.push({ obj, msg }) },
    });
    const stop = new AbortController();
    const link: OnlineLink = {
      session: agent,
      ack: { serverTime: new Date().toISOString(), heartbeatIntervalSec: 1, pingIntervalSec: 15 },
      signal: stop.signal,
      rttMs: () => null,
    };
    const loop = sender.runWhileOnline(link, () => 0.05);
    await waitFor(() => (received.length >= 2 ? true : undefined), 'two heartbeats after the failed one');
    stop.abort();
    await loop;
    expect(probes).toBeGreaterThanOrEqual(3);
    const [first] = errors;
    expect(first?.msg).toMatch(/heartbeat not sent/);
    expect((first!.obj as { err: Error }).err.message).toMatch(/EMFILE/);
  });
});
