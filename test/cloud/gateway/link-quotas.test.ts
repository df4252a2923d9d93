import { describe, expect, it } from 'vitest';
import {
  DEFAULT_LINK_QUOTAS,
  LinkQuota,
  type LinkQuotaLimits,
  TokenBucket,
} from '../../../cloud/gateway/link-quotas.js';

const limits: LinkQuotaLimits = {
  ...DEFAULT_LINK_QUOTAS,
  framesPerSec: 10,
  frameBurst: 20,
  bytesPerSec: 1000,
  byteBurst: 2000,
  callsInFlight: 3,
  forwardsInFlight: 1,
  itemsPerSec: 100,
  itemBurst: 100,
  envelopesPerSec: 10,
  envelopeBurst: 10,
  maxPaceMs: 1000,
};
const forward = (items: number, cards: number) => ({
  items: Array.from({ length: items }, (_, i) => ({ card: i < cards ? { alg: 'x' } : null })),
});

describe('token bucket', () => {
  it('gives the burst at once, then the rate; a debt is a wait; past maxWait nothing is taken', () => {
    const b = new TokenBucket(10, 20, 0);
    expect(b.take(20, 0)).toBe(0);
    expect(b.take(5, 0)).toBe(500); // 5 tokens owed at 10/s
    expect(b.waitFor(1, 0)).toBe(600);
    expect(b.take(100, 0, 1000)).toBe(Number.POSITIVE_INFINITY);
    expect(b.waitFor(1, 600)).toBe(0); // the refused take took nothing
    expect(b.take(1, 10_000)).toBe(0);
    expect(b.waitFor(20, 10_000)).toBe(100); // refilled to the burst only
  });
});

describe('link quota', () => {
  it('reading: within the budget 0, past it the ms to stop reading for', () => {
    const q = new LinkQuota(limits, 0);
    expect(q.read(1500, 0)).toBe(0);
    expect(q.read(1500, 0)).toBe(1000); // 1000 bytes owed at 1000/s
    const f = new LinkQuota(limits, 0);
    for (let i = 0; i < 20; i++) expect(f.read(1, 0)).toBe(0);
    expect(f.read(1, 0)).toBe(100); // the 21st frame: 1 frame owed at 10/s
  });

  it('calls in flight: past the limit an error frame with the quota; done() frees a place, once', () => {
    const q = new LinkQuota(limits, 0);
    const held = [q.enter('Heartbeat', {}, 0), q.enter('ActionStatus', {}, 0), q.enter('Heartbeat', {}, 0)];
    const over = q.enter('Heartbeat', {}, 0);
    expect('refused' in over && over.refused).toMatchObject({
      code: 'GenericError',
      message: 'quota exceeded: at most 3 calls in flight per link; wait for the answers',
      details: { quota: 'calls_in_flight', limit: 3 },
    });
    const first = held[0]!;
    if ('done' in first) {
      first.done();
      first.done();
    }
    expect('waitMs' in q.enter('Heartbeat', {}, 0)).toBe(true);
    expect('refused' in q.enter('Heartbeat', {}, 0)).toBe(true); // done() twice freed one place only
    expect(q.refusals).toBe(2);
  });

  it('one TransactionsForward in flight; the next is refused until the first is answered', () => {
    const q = new LinkQuota(limits, 0);
    const a = q.enter('TransactionsForward', forward(10, 0), 0);
    const b = q.enter('TransactionsForward', forward(10, 0), 0);
    expect('refused' in b && b.refused.details).toEqual({ quota: 'forwards_in_flight', limit: 1 });
    if ('done' in a) a.done();
    expect(q.enter('TransactionsForward', forward(10, 0), 0)).toMatchObject({ waitMs: 0 });
  });

  it('items and envelopes per second: within the burst at once, past it paced, past maxPace refused with retryAfterMs', () => {
    const q = new LinkQuota(limits, 0);
    const enter = (items: number, cards: number, now: number) => {
      const v = q.enter('TransactionsForward', forward(items, cards), now);
      if ('done' in v) v.done();
      return v;
    };
    expect(enter(10, 10, 0)).toMatchObject({ waitMs: 0 }); // the envelope burst
    expect(enter(5, 5, 0)).toMatchObject({ waitMs: 500 }); // 5 envelopes owed at 10/s
    const refused = enter(20, 20, 0); // 25 owed: 2.5 s > maxPaceMs
    expect('refused' in refused && refused.refused).toMatchObject({
      message: 'quota exceeded: at most 10 sealed card envelopes per second per link',
      details: { quota: 'envelopes_per_sec', limit: 10, retryAfterMs: 2500 },
    });
    expect(enter(100, 0, 10_000)).toMatchObject({ waitMs: 0 }); // card-less items have their own budget
    const items = enter(150, 0, 10_000);
    expect('refused' in items && items.refused.details).toMatchObject({ quota: 'items_per_sec', limit: 100 });
  });
});
