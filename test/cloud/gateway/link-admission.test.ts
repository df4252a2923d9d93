import { describe, expect, it } from 'vitest';
import { LinkAdmission } from '../../../cloud/gateway/link-admission.js';

describe('link admission (token bucket)', () => {
  it('admits a burst of a fifth of a second, then `rate` per second: never twice the rate in a second', () => {
    const a = new LinkAdmission(50, 0);
    const first = Array.from({ length: 20 }, () => a.admit(0));
    expect(first.filter(Boolean)).toHaveLength(10);
    expect(a.admit(10)).toBe(false); // 0.5 token
    expect(a.admit(20)).toBe(true); // 1 token after 20 ms
    expect(Array.from({ length: 30 }, () => a.admit(10_000)).filter(Boolean)).toHaveLength(10); // capped at the burst
    // Over the first second after a (re)start: the burst plus the rate, not twice the rate.
    const b = new LinkAdmission(1000, 0);
    let admitted = 0;
    for (let t = 0; t < 1000; t++) for (let i = 0; i < 10; i++) if (b.admit(t)) admitted++;
    expect(admitted).toBeLessThanOrEqual(1200);
    expect(admitted).toBeGreaterThanOrEqual(1100);
    // A small rate still admits one at a time.
    const c = new LinkAdmission(2, 0);
    expect([c.admit(0), c.admit(0)]).toEqual([true, false]);
  });

  it('0 admits everything', () => {
    const a = new LinkAdmission(0, 0);
    expect(Array.from({ length: 1000 }, () => a.admit(0)).every(Boolean)).toBe(true);
  });
});
