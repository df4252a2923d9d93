import { describe, expect, it } from 'vitest';
import { LinkAdmission } from '../../../cloud/gateway/link-admission.js';

describe('link admission (token bucket)', () => {
  it('admits a burst of `rate`, then `rate` per second', () => {
    const a = new LinkAdmission(5, 0);
    const first = Array.from({ length: 8 }, () => a.admit(0));
    expect(first.filter(Boolean)).toHaveLength(5);
    expect(a.admit(100)).toBe(false); // 0.5 token
    expect(a.admit(200)).toBe(true); // 1 token after 200 ms
    expect(Array.from({ length: 10 }, () => a.admit(10_000)).filter(Boolean)).toHaveLength(5); // capped at the burst
  });

  it('0 admits everything', () => {
    const a = new LinkAdmission(0, 0);
    expect(Array.from({ length: 1000 }, () => a.admit(0)).every(Boolean)).toBe(true);
  });
});
