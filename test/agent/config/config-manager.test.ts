import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentStore } from '../../../agent/agent-store.js';
import { ConfigManager } from '../../../agent/config/config-manager.js';
import { EventBus } from '../../../agent/events/event-bus.js';
import { DEFAULT_CONFIG, mergePatch } from '../../../protocol/config-schema.js';

const silent = { info: () => {}, warn: () => {} };

function setup() {
  const file = join(mkdtempSync(join(tmpdir(), 'posagent-cfg-')), 'agent.db');
  const store = new AgentStore(file);
  const events = new EventBus();
  const seen: unknown[] = [];
  events.subscribe((e) => seen.push(e));
  const applied: unknown[] = [];
  let acks = 0;
  const mgr = new ConfigManager({
    store,
    events,
    now: () => Date.parse('2026-11-23T10:00:00Z'),
    onApplied: (c) => applied.push(c),
    onAck: () => acks++,
    log: silent,
  });
  return { store, mgr, seen, applied, acks: () => acks, file };
}

const v = (n: number, patch: unknown = {}) => ({
  version: n,
  config: mergePatch(DEFAULT_CONFIG, patch) as Record<string, unknown>,
});

describe('ConfigManager (real SQLite file)', () => {
  let store: AgentStore | undefined;
  afterEach(() => store?.close());

  it('starts on the defaults with no version', () => {
    const s = setup();
    store = s.store;
    expect(s.mgr.current()).toEqual({ version: null, config: DEFAULT_CONFIG, appliedAt: null });
  });

  it('applies a valid push, persists it with its ack in the outbox, tells listeners', () => {
    const s = setup();
    store = s.store;
    s.mgr.handleApply(v(3, { display: { idleMessage: 'Hello' } }));
    expect(s.mgr.current().version).toBe(3);
    expect(s.mgr.current().config.display.idleMessage).toBe('Hello');
    expect(s.store.outbox()).toEqual([
      {
        seq: 1,
        action: 'ConfigApplied',
        payload: { version: 3, status: 'applied', errors: [], appliedVersion: 3 },
      },
    ]);
    expect(s.applied).toHaveLength(1);
    expect(s.seen).toMatchObject([{ event: 'config', data: { status: 'applied', version: 3 } }]);
    expect(s.acks()).toBe(1);
    // survives a reopen: it is on disk
    s.store.close();
    const again = new AgentStore(s.file);
    store = again;
    expect(again.appliedConfig()?.version).toBe(3);
    expect(statSync(s.file).size).toBeGreaterThan(0);
  });

  it('refuses an invalid push as a whole: reasons in the ack, previous config kept', () => {
    const s = setup();
    store = s.store;
    s.mgr.handleApply(v(1, { display: { idleMessage: 'Good' } }));
    s.mgr.handleApply(v(2, { tip: { suggestions: [1, 2, 3, 4, 5] }, display: { idleMessage: 'Bad' } }));
    expect(s.mgr.current().version).toBe(1);
    expect(s.mgr.current().config.display.idleMessage).toBe('Good');
    const ack = s.store.outbox()[1]!.payload as {
      status: string;
      errors: { path: string }[];
      appliedVersion: number;
    };
    expect(ack.status).toBe('rejected');
    expect(ack.appliedVersion).toBe(1);
    expect(ack.errors[0]!.path).toBe('/tip/suggestions');
    expect(s.mgr.lastRejection()).toMatchObject({ version: 2 });
    expect(s.applied).toHaveLength(1);
  });

  it('refuses a stale version and answers a repeat like the first time without re-applying', () => {
    const s = setup();
    store = s.store;
    s.mgr.handleApply(v(5));
    s.mgr.handleApply(v(5));
    s.mgr.handleApply(v(4));
    expect(s.applied).toHaveLength(1);
    const acks = s.store.outbox().map((i) => i.payload as { version: number; status: string });
    expect(acks.map((a) => [a.version, a.status])).toEqual([
      [5, 'applied'],
      [5, 'applied'],
      [4, 'rejected'],
    ]);
    expect(s.mgr.current().version).toBe(5);
  });

  it('delivers the outbox in order and forgets only what was delivered', () => {
    const s = setup();
    store = s.store;
    s.mgr.handleApply(v(1));
    s.mgr.handleApply(v(2));
    const [first, second] = s.store.outbox();
    s.store.delivered(first!.seq);
    expect(s.store.outbox().map((i) => i.seq)).toEqual([second!.seq]);
  });
});
