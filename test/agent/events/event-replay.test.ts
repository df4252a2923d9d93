import { describe, expect, it } from 'vitest';
import { newRunId, ReplayWindow } from '../../../agent/events/event-replay.js';

/** Issue 18.1: event ids and the bounded replay window behind `Last-Event-ID`. */
describe('event replay window', () => {
  it('numbers events <run>-<n> and puts the whole SSE frame together once', () => {
    const w = new ReplayWindow('abc');
    const e = w.append('transaction', { id: 't1', state: 'stored' });
    expect(e.id).toBe('abc-1');
    expect(e.frame).toBe('id: abc-1\nevent: transaction\ndata: {"id":"t1","state":"stored"}\n\n');
    expect(w.append('link', {}).id).toBe('abc-2');
  });

  it('replays exactly what came after the last id seen, in order; nothing when up to date', () => {
    const w = new ReplayWindow('abc');
    for (let i = 0; i < 10; i++) w.append('transaction', { i });
    const r = w.since('abc-7');
    expect(r.ok && r.events.map((e) => e.id)).toEqual(['abc-8', 'abc-9', 'abc-10']);
    const none = w.since('abc-10');
    expect(none.ok && none.events).toEqual([]);
  });

  it('says what was missed: an id older than the window, from another run, or not ours', () => {
    const w = new ReplayWindow('abc', { maxEvents: 5 });
    for (let i = 0; i < 10; i++) w.append('transaction', { i });
    // abc-6..abc-10 are kept: after abc-5 everything is here, after abc-4 abc-5 is gone
    expect(w.since('abc-5').ok).toBe(true);
    expect(w.since('abc-4')).toEqual({ ok: false, reason: 'too_old', oldestId: 'abc-6' });
    expect(w.since('zzz-9')).toEqual({ ok: false, reason: 'restarted', oldestId: 'abc-6' });
    expect(w.since('abc-99')).toMatchObject({ ok: false, reason: 'invalid' });
    expect(w.since('hello')).toMatchObject({ ok: false, reason: 'invalid' });
  });

  it('keeps exactly the last maxEvents, however many came', () => {
    const w = new ReplayWindow('abc', { maxEvents: 1000 });
    for (let i = 0; i < 5000; i++) w.append('transaction', { i });
    const r = w.since('abc-4000');
    expect(r.ok && r.events.map((e) => e.n)).toEqual(Array.from({ length: 1000 }, (_, k) => 4001 + k));
    expect(w.since('abc-3999')).toMatchObject({ ok: false, reason: 'too_old', oldestId: 'abc-4001' });
  });

  it('run ids of two starts differ', () => {
    expect(newRunId(1_700_000_000_000)).not.toBe(newRunId(1_700_000_000_001));
  });
});
