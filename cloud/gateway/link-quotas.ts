import { RpcError, RpcErrorCode } from '../../protocol/rpc-errors.js';

/**
 * What one agent link may ask of the cloud. Pure: the clock is passed in; the gateway does the
 * waiting.
 *
 * - **Reading** (frames/s and bytes/s): past the budget the cloud stops reading the link's socket
 *   until the budget refills — TCP pushes back on the sender; nothing is refused, nothing is
 *   parsed early. A real agent never notices.
 * - **Calls in flight** (any action) and **TransactionsForward in flight** (the protocol says one
 *   batch at a time): a call past them is answered at once with an error frame
 *   `GenericError` whose details say which quota (`{quota, limit}`).
 * - **Items and sealed envelopes per second** in TransactionsForward: a batch that would pass
 *   the rate waits (its answer comes later) up to `maxPaceMs`; one that would wait longer is
 *   refused with `{quota, limit, retryAfterMs}`.
 */
export interface LinkQuotaLimits {
  framesPerSec: number;
  frameBurst: number;
  bytesPerSec: number;
  byteBurst: number;
  callsInFlight: number;
  forwardsInFlight: number;
  itemsPerSec: number;
  itemBurst: number;
  envelopesPerSec: number;
  envelopeBurst: number;
  /** The longest a forward is held back to keep to the item/envelope rates. */
  maxPaceMs: number;
}

export const DEFAULT_LINK_QUOTAS: LinkQuotaLimits = {
  framesPerSec: 200,
  frameBurst: 400,
  bytesPerSec: 4 * 1024 * 1024,
  byteBurst: 8 * 1024 * 1024,
  callsInFlight: 16,
  forwardsInFlight: 1,
  // A drain after a long outage runs at ~15k items/s without cards; envelopes cost an RSA
  // private-key operation each (~1 ms on a worker).
  itemsPerSec: 20_000,
  itemBurst: 10_000,
  envelopesPerSec: 1000,
  envelopeBurst: 1000,
  maxPaceMs: 10_000,
};

/** A token bucket: `rate` per second, at most `burst` saved up. */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.last = now;
  }

  private refill(now: number): void {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
  }

  /**
   * Takes `n` tokens. Returns 0 when they were there, else the ms until the debt is paid (the
   * tokens are taken all the same, so the bucket goes below zero); `Infinity` (nothing taken)
   * when that would be longer than `maxWaitMs`.
   */
  take(n: number, now: number, maxWaitMs = Number.POSITIVE_INFINITY): number {
    this.refill(now);
    if (this.tokens >= n) {
      this.tokens -= n;
      return 0;
    }
    const wait = ((n - this.tokens) / this.rate) * 1000;
    if (wait > maxWaitMs) return Number.POSITIVE_INFINITY;
    this.tokens -= n;
    return Math.ceil(wait);
  }

  /** ms until `n` tokens are there (0: now). */
  waitFor(n: number, now: number): number {
    this.refill(now);
    return this.tokens >= n ? 0 : Math.ceil(((n - this.tokens) / this.rate) * 1000);
  }
}

export type CallAdmission = { refused: RpcError } | { waitMs: number; done(): void };

function quotaError(message: string, details: Record<string, unknown>): RpcError {
  return new RpcError(RpcErrorCode.GenericError, `quota exceeded: ${message}`, details);
}

export class LinkQuota {
  private readonly frames: TokenBucket;
  private readonly bytes: TokenBucket;
  private readonly items: TokenBucket;
  private readonly envelopes: TokenBucket;
  private calls = 0;
  private forwards = 0;
  /** Calls refused by a quota on this link (for logs and metrics). */
  refusals = 0;

  constructor(
    private readonly limits: LinkQuotaLimits,
    now: number,
  ) {
    this.frames = new TokenBucket(limits.framesPerSec, limits.frameBurst, now);
    this.bytes = new TokenBucket(limits.bytesPerSec, limits.byteBurst, now);
    this.items = new TokenBucket(limits.itemsPerSec, limits.itemBurst, now);
    this.envelopes = new TokenBucket(limits.envelopesPerSec, limits.envelopeBurst, now);
  }

  /** A frame of `size` bytes was read: ms to stop reading the socket for (0: go on). */
  read(size: number, now: number): number {
    return Math.max(this.frames.take(1, now), this.bytes.take(size, now));
  }

  /** A call is about to be validated and handled. */
  enter(action: string, payload: unknown, now: number): CallAdmission {
    if (this.calls >= this.limits.callsInFlight) {
      this.refusals++;
      return {
        refused: quotaError(
          `at most ${this.limits.callsInFlight} calls in flight per link; wait for the answers`,
          { quota: 'calls_in_flight', limit: this.limits.callsInFlight },
        ),
      };
    }
    let waitMs = 0;
    let forward = false;
    if (action === 'TransactionsForward') {
      if (this.forwards >= this.limits.forwardsInFlight) {
        this.refusals++;
        return {
          refused: quotaError(
            `at most ${this.limits.forwardsInFlight} TransactionsForward in flight per link; send the next batch after this one's answer`,
            { quota: 'forwards_in_flight', limit: this.limits.forwardsInFlight },
          ),
        };
      }
      const { items, envelopes } = countItems(payload);
      const itemWait = this.items.waitFor(items, now);
      const envelopeWait = this.envelopes.waitFor(envelopes, now);
      const wait = Math.max(itemWait, envelopeWait);
      if (wait > this.limits.maxPaceMs) {
        this.refusals++;
        const byEnvelopes = envelopeWait >= itemWait;
        return {
          refused: quotaError(
            byEnvelopes
              ? `at most ${this.limits.envelopesPerSec} sealed card envelopes per second per link`
              : `at most ${this.limits.itemsPerSec} forwarded transactions per second per link`,
            {
              quota: byEnvelopes ? 'envelopes_per_sec' : 'items_per_sec',
              limit: byEnvelopes ? this.limits.envelopesPerSec : this.limits.itemsPerSec,
              retryAfterMs: wait,
            },
          ),
        };
      }
      this.items.take(items, now);
      this.envelopes.take(envelopes, now);
      waitMs = wait;
      forward = true;
      this.forwards++;
    }
    this.calls++;
    let done = false;
    return {
      waitMs,
      done: () => {
        if (done) return;
        done = true;
        this.calls--;
        if (forward) this.forwards--;
      },
    };
  }
}

/** Items and sealed envelopes a TransactionsForward payload asks for, before it is validated. */
function countItems(payload: unknown): { items: number; envelopes: number } {
  const list = (payload as { items?: unknown } | null)?.items;
  if (!Array.isArray(list)) return { items: 0, envelopes: 0 };
  let envelopes = 0;
  for (const item of list) {
    const card = (item as { card?: unknown } | null)?.card;
    if (typeof card === 'object' && card !== null) envelopes++;
  }
  return { items: list.length, envelopes };
}
