import { describe, expect, it } from 'vitest';
import { RpcError } from '../../protocol/rpc-errors.js';
import type { Handlers, Timers } from '../../protocol/rpc-session.js';
import { RpcSession } from '../../protocol/rpc-session.js';

const hello = {
  terminalId: 'term_1',
  softwareVersion: '1.0.0',
  protocolVersion: 1,
  configVersion: null,
  bootId: 'b',
  queueDepth: 0,
  openActions: [],
  clock: '2026-01-01T00:00:00.000Z',
};
const ack = { serverTime: '2026-01-01T00:00:00.000Z', heartbeatIntervalSec: 30, pingIntervalSec: 15 };

/** Manual timers: a test fires them; no real time passes. */
function manualTimers() {
  const pending = new Map<number, () => void>();
  let n = 0;
  const timers: Timers = {
    setTimeout: (fn) => {
      pending.set(++n, fn);
      return n;
    },
    clearTimeout: (h) => {
      pending.delete(h as number);
    },
  };
  return {
    timers,
    fireAll: () => {
      for (const f of [...pending.values()]) f();
    },
    count: () => pending.size,
  };
}

/** An agent session and a cloud session wired back to back, synchronously. */
function pair(cloudHandlers: Handlers, timers = manualTimers().timers) {
  let n = 0;
  const sent: { agent: string[]; cloud: string[] } = { agent: [], cloud: [] };
  let cloud: RpcSession;
  const agent = new RpcSession({
    answers: 'cloudToAgent',
    handlers: {},
    send: (t) => {
      sent.agent.push(t);
      queueMicrotask(() => cloud.receive(t));
    },
    newId: () => `a${++n}`,
    callTimeoutMs: 1000,
    timers,
  });
  cloud = new RpcSession({
    answers: 'agentToCloud',
    handlers: cloudHandlers,
    send: (t) => {
      sent.cloud.push(t);
      queueMicrotask(() => agent.receive(t));
    },
    newId: () => `c${++n}`,
    callTimeoutMs: 1000,
    timers,
  });
  return { agent, cloud, sent };
}

describe('RpcSession', () => {
  it('calls and gets the validated result', async () => {
    const { agent } = pair({ Hello: () => ack });
    await expect(agent.call('Hello', hello)).resolves.toEqual(ack);
    expect(agent.pendingCount).toBe(0);
  });

  it('refuses to send an invalid payload, before anything goes on the wire', async () => {
    const { agent, sent } = pair({ Hello: () => ack });
    await expect(agent.call('Hello', { ...hello, queueDepth: -5 })).rejects.toMatchObject({
      code: 'PropertyConstraintViolation',
    });
    expect(sent.agent).toEqual([]);
  });

  it('refuses to call an action that goes the other way', async () => {
    const { cloud } = pair({});
    await expect(cloud.call('Hello', hello)).rejects.toMatchObject({ code: 'NotSupported' });
  });

  it('answers a call with no handler NotSupported, and a handler RpcError with its code', async () => {
    const { agent } = pair({ Hello: () => Promise.reject(new RpcError('SecurityError', 'who are you')) });
    await expect(
      agent.call('Heartbeat', {
        sentAt: '2026-01-01T00:00:00.000Z',
        uptimeSec: 1,
        battery: null,
        disk: { freeBytes: 1, totalBytes: 2 },
        memory: { freeBytes: 1, totalBytes: 2, agentRssBytes: 3 },
        temperatureC: null,
        queueDepth: 0,
        queueOldestAt: null,
        linkRttMs: null,
      }),
    ).rejects.toMatchObject({ code: 'NotSupported' });
    await expect(agent.call('Hello', hello)).rejects.toMatchObject({
      code: 'SecurityError',
      message: 'who are you',
    });
  });

  it('hides a handler crash behind InternalError', async () => {
    const { agent } = pair({
      Hello: () => {
        throw new Error('secret internals');
      },
    });
    const err = (await agent.call('Hello', hello).catch((e: unknown) => e)) as RpcError;
    expect(err.code).toBe('InternalError');
    expect(err.message).not.toContain('secret');
  });

  it('rejects a result that fails the response schema', async () => {
    const { agent } = pair({ Hello: () => ({ ...ack, heartbeatIntervalSec: 0 }) });
    // the answering side refuses to send its own invalid answer
    await expect(agent.call('Hello', hello)).rejects.toMatchObject({ code: 'InternalError' });
  });

  it('times out a call that gets no answer, and forgets it', async () => {
    const t = manualTimers();
    const agent = new RpcSession({
      answers: 'cloudToAgent',
      handlers: {},
      send: () => {},
      newId: () => 'x1',
      callTimeoutMs: 50,
      timers: t.timers,
    });
    const p = agent.call('Hello', hello);
    t.fireAll();
    await expect(p).rejects.toMatchObject({ code: 'Timeout' });
    expect(agent.pendingCount).toBe(0);
    // a late answer to the forgotten call is ignored, not answered
    const sent: string[] = [];
    agent.receive('[3, "x1", {}]');
    expect(sent).toEqual([]);
  });

  it('rejects calls in flight on close, and every later call', async () => {
    const agent = new RpcSession({
      answers: 'cloudToAgent',
      handlers: {},
      send: () => {},
      newId: () => 'x',
      callTimeoutMs: 50,
      timers: manualTimers().timers,
    });
    const p = agent.call('Hello', hello);
    agent.close('socket closed');
    await expect(p).rejects.toMatchObject({ code: 'Disconnected' });
    await expect(agent.call('Hello', hello)).rejects.toMatchObject({ code: 'Disconnected' });
  });

  it('answers a binary frame and an unknown action with error frames', () => {
    const sent: string[] = [];
    const s = new RpcSession({
      answers: 'agentToCloud',
      handlers: {},
      send: (t) => sent.push(t),
      newId: () => 'x',
      callTimeoutMs: 50,
    });
    s.receiveBinary();
    s.receive('[2, "q", "Teleport", {}]');
    // A known action sent the wrong way is NotSupported (docs/protocol.md §3), an unknown one
    // NotImplemented, and names from Object.prototype are unknown actions.
    s.receive('[2, "r", "ApplyConfig", {"version": 1, "config": {}}]');
    s.receive('[2, "t", "constructor", {}]');
    return new Promise<void>((resolve) =>
      setImmediate(() => {
        expect(sent.map((t) => (JSON.parse(t) as unknown[]).slice(0, 3))).toEqual([
          [4, '-1', 'RpcFrameworkError'],
          [4, 'q', 'NotImplemented'],
          [4, 'r', 'NotSupported'],
          [4, 't', 'NotImplemented'],
        ]);
        resolve();
      }),
    );
  });
});
