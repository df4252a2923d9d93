import { describe, expect, it } from 'vitest';
import { Pacer, type PacerOptions } from '../../cloud/pacer.js';
import { mostInWindow } from '../../harness/event-windows.js';

/** A pacer on the host's clock: failures ignored and jitter random unless the test says otherwise. */
function pacer<T = string>(
  o: Pick<PacerOptions<T>, 'perSecond' | 'run'> & Partial<PacerOptions<T>>,
): Pacer<T> {
  return new Pacer<T>({ onError: () => {}, now: () => performance.now(), random: Math.random, ...o });
}

describe('Pacer (config fan-out)', () => {
  it('starts at most perSecond in any second, every key once, each gap at least a slot and jittered', async () => {
    const started: number[] = [];
    const keys: string[] = [];
    const p = pacer({
      perSecond: 50,
      run: async (k) => {
        started.push(performance.now());
        keys.push(k);
      },
    });
    const ids = Array.from({ length: 60 }, (_, i) => `t${i}`);
    for (const id of ids) p.add(id, id);
    // Added again before its turn: still once.
    p.add('t59', 't59');
    p.add('t58', 't58');
    expect(p.pending).toBeGreaterThan(50);
    await p.idle();
    expect(keys.sort()).toEqual([...ids].sort());
    // 50/s: a slot is 20 ms; no window of a second holds more than 50 (+1 at its edge).
    expect(mostInWindow(started, 1000)).toBeLessThanOrEqual(51);
    const gaps = started.slice(1).map((t, i) => t - started[i]!);
    // Timers fire a little late, never early: at least a slot apart (a ms of rounding allowed).
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(19);
    // Jittered: the gaps are not all the same.
    expect(Math.max(...gaps) - Math.min(...gaps)).toBeGreaterThan(3);
    p.stop();
  });

  it('a lone push after a quiet slot starts at once; a failed one is reported and the rest go on', async () => {
    const started: string[] = [];
    const failed: string[] = [];
    const p = pacer({
      perSecond: 10,
      run: async (k) => {
        started.push(k);
        if (k === 'bad') throw new Error('link gone');
      },
      onError: (k, err) => failed.push(`${k}: ${err.message}`),
      random: () => 0,
    });
    p.add('one', 'one');
    expect(started).toEqual(['one']); // synchronously, no wait
    p.add('bad', 'bad');
    p.add('two', 'two');
    await p.idle();
    await new Promise((r) => setImmediate(r));
    expect(started).toEqual(['one', 'bad', 'two']);
    expect(failed).toEqual(['bad: link gone']);
    p.stop();
    p.add('after-stop', 'after-stop');
    expect(started).not.toContain('after-stop');
  });

  it('refuses a rate of 0', () => {
    expect(() => pacer({ perSecond: 0, run: async () => {} })).toThrow(
      'a pacer needs a rate above 0 (got 0)',
    );
  });
});

describe('Pacer items', () => {
  it('a key added again before its turn runs once, with the item added last', async () => {
    const ran: [string, number][] = [];
    const p = pacer<number>({
      perSecond: 100,
      run: async (n, key) => {
        ran.push([key, n]);
      },
      random: () => 0,
    });
    p.add('a', 1);
    p.add('b', 1);
    p.add('b', 2);
    await p.idle();
    expect(ran).toEqual([
      ['a', 1],
      ['b', 2],
    ]);
    p.stop();
  });
});
