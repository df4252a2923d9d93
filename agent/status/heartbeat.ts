import { RpcError, RpcErrorCode } from '../../protocol/rpc-errors.js';
import { sleepUnless } from '../interruptible-sleep.js';
import type { OnlineLink } from '../link/cloud-link.js';
import type { HealthCollector } from './health.js';

/**
 * Sends `Heartbeat` while a link is online: one at once, then every interval the cloud gave.
 * Health is collected when a heartbeat is due, not continuously.
 */
export interface HeartbeatOptions {
  health: HealthCollector;
  now(): number;
  queue(): { stored: number; oldestAt: string | null };
  onSent(at: string): void;
  log: { warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
}

export class HeartbeatSender {
  private wait = new AbortController();

  constructor(private readonly o: HeartbeatOptions) {}

  /** The interval changed: end the current wait, so the next heartbeat follows the new interval now. */
  reschedule(): void {
    this.wait.abort();
  }

  async runWhileOnline(link: OnlineLink, intervalSec: () => number): Promise<void> {
    let lastSentAt = Number.NEGATIVE_INFINITY;
    while (!link.signal.aborted) {
      // Recomputed after every wake-up: a new interval moves the next heartbeat, it does not send one.
      const dueInMs = lastSentAt + intervalSec() * 1000 - this.o.now();
      if (dueInMs > 0) {
        this.wait = new AbortController();
        await sleepUnless(dueInMs, link.signal, this.wait.signal);
        if (link.signal.aborted) return;
        continue;
      }
      lastSentAt = this.o.now();
      // Everything a beat does can fail (health probes with no descriptor left, the store): the beat
      // is skipped and logged, the loop goes on to the next one.
      try {
        const sample = await this.o.health.collect();
        if (link.signal.aborted) return;
        const queue = this.o.queue();
        await link.session.call('Heartbeat', {
          ...sample,
          sentAt: new Date(this.o.now()).toISOString(),
          queueDepth: queue.stored,
          queueOldestAt: queue.oldestAt,
          linkRttMs: link.rttMs(),
        });
        this.o.onSent(new Date(this.o.now()).toISOString());
      } catch (err) {
        if (err instanceof RpcError && err.code === RpcErrorCode.Disconnected) return;
        if (err instanceof RpcError) this.o.log.warn({ err: err.message }, 'heartbeat not acknowledged');
        else this.o.log.error({ err }, 'heartbeat not sent; trying again at the next interval');
      }
    }
  }
}
