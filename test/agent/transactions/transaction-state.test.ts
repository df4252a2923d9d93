import { describe, expect, it } from 'vitest';
import {
  canTransition,
  TRANSACTION_TRANSITIONS,
  type TransactionEvent,
} from '../../../agent/transactions/transaction-state.js';
import { TRANSACTION_STATES, type TransactionState } from '../../../protocol/transactions.js';

const allowed: [TransactionState, TransactionEvent, TransactionState][] = [
  ['stored', 'forward', 'sending'],
  ['stored', 'expire', 'expired'],
  ['sending', 'resend', 'sending'],
  ['sending', 'received', 'received'],
  ['sending', 'invalid', 'failed'],
  ['sending', 'expire', 'expired'],
  ['received', 'decided', 'authorised'],
  ['received', 'decided', 'declined'],
];

describe('transaction state machine', () => {
  it.each(allowed)('%s --%s--> %s', (from, event, to) => {
    expect(canTransition(from, event, to)).toBe(true);
  });

  it('has exactly these transitions, and final states have none', () => {
    const table = Object.entries(TRANSACTION_TRANSITIONS).flatMap(([from, evs]) =>
      Object.entries(evs).flatMap(([e, tos]) => (tos ?? []).map((to) => [from, e, to])),
    );
    expect(table.sort()).toEqual(allowed.map((t) => [...t]).sort());
    for (const s of ['authorised', 'declined', 'failed', 'expired'] as const)
      expect(TRANSACTION_TRANSITIONS[s]).toEqual({});
  });

  const events: TransactionEvent[] = ['forward', 'resend', 'received', 'invalid', 'decided', 'expire'];
  const forbidden = TRANSACTION_STATES.flatMap((from) =>
    events.flatMap((e) => TRANSACTION_STATES.map((to) => [from, e, to] as const)),
  ).filter(([f, e, t]) => !allowed.some(([af, ae, at]) => af === f && ae === e && at === t));
  it(`refuses the ${forbidden.length} other (state, event, state) triples`, () => {
    for (const [f, e, t] of forbidden) expect(canTransition(f, e, t), `${f} --${e}--> ${t}`).toBe(false);
  });
});
