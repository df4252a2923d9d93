import { describe, expect, it } from 'vitest';
import { type AgentEvent, EventBus } from '../../../agent/events/event-bus.js';
import type { TransactionRecord } from '../../../agent/transactions/transaction-record.js';

const record: TransactionRecord = {
  id: '0b8a5f3e-4a57-4e0b-9d46-1f2d7c1c9e11',
  amount: 1250,
  currency: 'EUR',
  state: 'expired',
  seq: 7,
  createdAt: '2026-11-23T10:00:00.000Z',
  updatedAt: '2026-11-24T10:00:00.000Z',
  offline: true,
};

/** Issue 19.4: the agent's typed event bus (an event map from name to payload). */
describe('typed event bus', () => {
  it('hands each listener the event with its id, its payload and its SSE frame; a broken listener does not stop the others', () => {
    const bus = new EventBus({ runId: 'run' });
    const seen: AgentEvent[] = [];
    bus.subscribe(() => {
      throw new Error('a closed socket');
    });
    const off = bus.subscribe((e) => seen.push(e));
    bus.publish('transaction', record);
    bus.publish('lock', { locked: true, actionId: 'act_1' });
    off();
    bus.publish('lock', { locked: false, actionId: 'act_2' });
    expect(seen.map((e) => [e.id, e.event])).toEqual([
      ['run-1', 'transaction'],
      ['run-2', 'lock'],
    ]);
    const first = seen[0]!;
    // `event` narrows `data` to that event's payload.
    if (first.event === 'transaction') expect(first.data.state).toBe('expired');
    expect(first.frame).toBe(`id: run-1\nevent: transaction\ndata: ${JSON.stringify(record)}\n\n`);
    expect(bus.since('run-1')).toMatchObject({ ok: true, events: [{ id: 'run-2' }, { id: 'run-3' }] });
  });

  it('takes only the payload its event names (checked by tsc in npm run lint)', () => {
    const bus = new EventBus();
    const wrong = () => {
      // @ts-expect-error issue 19: a `transaction` event carries a TransactionRecord, not a count
      bus.publish('transaction', { expired: 3 });
      // @ts-expect-error no such event
      bus.publish('expired', record);
      // @ts-expect-error a lock event says whether it is locked
      bus.publish('lock', { actionId: 'act_1' });
    };
    expect(typeof wrong).toBe('function');
  });
});
