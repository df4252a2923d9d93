import { describe, expect, it } from 'vitest';
import {
  InvalidTransitionError,
  LINK_TRANSITIONS,
  type LinkEvent,
  type LinkState,
  nextLinkState,
} from '../../../agent/link/link-state.js';

const allowed: [LinkState, LinkEvent, LinkState][] = [
  ['offline', 'connect', 'connecting'],
  ['offline', 'stop', 'offline'],
  ['connecting', 'helloAcked', 'online'],
  ['connecting', 'lost', 'offline'],
  ['connecting', 'refused', 'error'],
  ['connecting', 'stop', 'offline'],
  ['online', 'lost', 'offline'],
  ['online', 'refused', 'error'],
  ['online', 'stop', 'offline'],
  ['error', 'connect', 'connecting'],
  ['error', 'stop', 'offline'],
  ['offline', 'deactivated', 'error'],
  ['connecting', 'deactivated', 'error'],
  ['online', 'deactivated', 'error'],
  ['error', 'deactivated', 'error'],
];

describe('link state machine', () => {
  it.each(allowed)('%s --%s--> %s', (from, event, to) => {
    expect(nextLinkState(from, event)).toBe(to);
  });

  it('has exactly these transitions', () => {
    const table = Object.entries(LINK_TRANSITIONS).flatMap(([from, evs]) =>
      Object.entries(evs).map(([e, to]) => [from, e, to]),
    );
    expect(table.sort()).toEqual(allowed.map((t) => [...t]).sort());
  });

  const states: LinkState[] = ['offline', 'connecting', 'online', 'error'];
  const events: LinkEvent[] = ['connect', 'helloAcked', 'lost', 'refused', 'stop', 'deactivated'];
  const forbidden = states
    .flatMap((s) => events.map((e) => [s, e] as const))
    .filter(([s, e]) => !allowed.some(([f, ev]) => f === s && ev === e));
  it.each(forbidden)('refuses %s --%s-->', (from, event) => {
    expect(() => nextLinkState(from, event)).toThrow(InvalidTransitionError);
  });
});
