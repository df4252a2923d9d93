import { Refusal } from '../../protocol/refusal.js';
import { WakeSignal } from '../wake-signal.js';
import type { ActionStore, BusyLease } from './action-store.js';

/**
 * Busy leases: the POS app says "a sale is under way" (`POST /v1/busy {ttlSeconds, reason}`) and
 * the agent holds back anything that would interrupt it (reboot, the switch to a new version)
 * until the lease is released or expires. Leases are in the store, so a restart keeps them; an
 * app that dies without releasing its lease cannot block the terminal past the lease's end.
 */
export const MAX_LEASE_SECONDS = 3600;

export class BusyLeases {
  private readonly changed = new WakeSignal();

  constructor(
    private readonly o: {
      store: Pick<ActionStore, 'addLease' | 'dropLease' | 'leases'>;
      now(): number;
    },
  ) {}

  acquire(body: unknown): BusyLease {
    const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
    const ttl = b.ttlSeconds;
    if (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl < 1 || ttl > MAX_LEASE_SECONDS)
      throw new Refusal(
        'invalid_lease',
        `ttlSeconds must be an integer from 1 to ${MAX_LEASE_SECONDS}, got ${JSON.stringify(ttl)}`,
      );
    const reason = b.reason ?? 'busy';
    if (typeof reason !== 'string' || reason.length === 0 || reason.length > 200)
      throw new Refusal('invalid_lease', 'reason must be a string of 1 to 200 characters');
    const lease = this.o.store.addLease(reason, new Date(this.o.now() + ttl * 1000).toISOString());
    this.notify();
    return lease;
  }

  release(leaseId: string): { leaseId: string; released: true } {
    if (!this.o.store.dropLease(leaseId))
      throw new Refusal('lease_not_found', `no busy lease ${leaseId} (released already, or expired)`);
    this.notify();
    return { leaseId, released: true };
  }

  held(): BusyLease[] {
    return this.o.store.leases(new Date(this.o.now()).toISOString());
  }

  /**
   * Resolves once no lease is held. While one is, calls `waiting` with it (again whenever the
   * holding lease changes) and sleeps until a release or the soonest expiry.
   */
  async whenFree(waiting: (lease: BusyLease) => void, signal: AbortSignal): Promise<void> {
    let reported: string | null = null;
    for (;;) {
      if (signal.aborted) throw signal.reason ?? new Error('stopped');
      const [first] = this.held();
      if (!first) return;
      if (reported !== first.leaseId) {
        reported = first.leaseId;
        waiting(first);
      }
      const untilExpiry = new AbortController();
      const timer = setTimeout(
        () => untilExpiry.abort(),
        Math.max(10, Date.parse(first.expiresAt) - this.o.now()),
      );
      const onStop = () => untilExpiry.abort();
      signal.addEventListener('abort', onStop, { once: true });
      await this.changed.wait(untilExpiry.signal);
      clearTimeout(timer);
      signal.removeEventListener('abort', onStop);
    }
  }

  private notify(): void {
    this.changed.wake();
  }
}
