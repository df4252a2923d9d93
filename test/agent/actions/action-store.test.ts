import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BusyLeases } from '../../../agent/actions/busy-leases.js';
import { AgentStore } from '../../../agent/agent-store.js';
import { Refusal } from '../../../protocol/refusal.js';
import { tempDir } from '../../support/processes.js';

const AT = '2026-11-23T10:00:00.000Z';
const reboot = { actionId: 'a1', type: 'reboot' as const, params: {}, expiresAt: '2099-01-01T00:00:00.000Z' };

/** The agent's action records on a real SQLite file: written with their status message, in one transaction. */
describe('action store', () => {
  let store: AgentStore;
  beforeEach(() => {
    store = new AgentStore(join(tempDir('actions'), 'agent.db'));
  });
  afterEach(() => store.close());

  it('records an action with its first status once; a repeat changes nothing', () => {
    const first = store.actions.receive(reboot, AT);
    expect(first.isNew).toBe(true);
    expect(first.row).toMatchObject({ id: 'a1', type: 'reboot', state: 'processing', step: null });
    const again = store.actions.receive({ ...reboot, type: 'lock' }, AT);
    expect(again.isNew).toBe(false);
    expect(again.row.type).toBe('reboot');
    expect(store.outbox().filter((m) => m.action === 'ActionStatus')).toHaveLength(1);
  });

  it('every change queues its ActionStatus; a final action cannot change, and nothing is written when refused', () => {
    store.actions.receive(reboot, AT);
    store.actions.progress('a1', { step: 'rebooting', detail: { bootId: 'b1' } }, AT);
    store.actions.progress('a1', { state: 'failed', reason: 'no' }, AT);
    const before = store.outbox();
    expect(() => store.actions.progress('a1', { state: 'completed' }, AT)).toThrow(
      /is failed; it cannot become completed/,
    );
    expect(store.outbox()).toEqual(before);
    expect(before.map((m) => (m.payload as { status: string; step: string | null }).step)).toEqual([
      null,
      'rebooting',
      'rebooting',
    ]);
    expect(store.actions.get('a1')).toMatchObject({
      state: 'failed',
      reason: 'no',
      detail: { bootId: 'b1' },
    });
    expect(store.actions.open()).toEqual([]);
  });

  it('locks and unlocks with the action that asked, persisted', () => {
    store.actions.receive({ ...reboot, actionId: 'l1', type: 'lock' }, AT);
    store.actions.setLocked('l1', true, AT);
    expect(store.lock()).toEqual({ locked: true, since: AT, actionId: 'l1' });
    expect(store.actions.get('l1')!.state).toBe('completed');
  });
});

describe('busy leases', () => {
  let store: AgentStore;
  let now = Date.parse(AT);
  beforeEach(() => {
    store = new AgentStore(join(tempDir('leases'), 'agent.db'));
    now = Date.parse(AT);
  });
  afterEach(() => store.close());

  it('holds until released or expired; bad input is refused with nothing stored', async () => {
    const leases = new BusyLeases({ store: store.actions, now: () => now });
    for (const body of [
      { ttlSeconds: 0 },
      { ttlSeconds: 3601 },
      { ttlSeconds: 1.5 },
      { ttlSeconds: 5, reason: '' },
      null,
    ]) {
      expect(() => leases.acquire(body)).toThrow(Refusal);
    }
    expect(leases.held()).toEqual([]);
    const l = leases.acquire({ ttlSeconds: 60, reason: 'sale' });
    expect(l.expiresAt).toBe('2026-11-23T10:01:00.000Z');
    expect(leases.held()).toHaveLength(1);
    now += 61_000;
    expect(leases.held()).toEqual([]);
    expect(() => leases.release(l.leaseId)).toThrow(/no busy lease/);

    const m = leases.acquire({ ttlSeconds: 60 });
    const waits: string[] = [];
    const free = leases.whenFree((x) => waits.push(x.reason), new AbortController().signal);
    await Promise.resolve();
    expect(waits).toEqual(['busy']);
    leases.release(m.leaseId);
    await free;
  });
});
