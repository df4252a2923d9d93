import { RpcError, RpcErrorCode } from '../../protocol/rpc-errors.js';
import type { AgentStore } from '../agent-store.js';
import { sleepUnless } from '../interruptible-sleep.js';
import { WakeSignal } from '../wake-signal.js';
import type { OnlineLink } from './cloud-link.js';

const RETRY_AFTER_MS = 1000;

/**
 * Sends what the agent must tell the cloud (config acks now; action status later) from the
 * store, oldest first, one at a time, after `Hello`. A row is deleted only when the cloud has
 * answered it; a link that drops mid-way leaves it for the next link, so a crash loses nothing.
 */
export class OutboxSender {
  private readonly pending = new WakeSignal();

  constructor(
    private readonly store: AgentStore,
    private readonly log: { warn(obj: object, msg: string): void; error(obj: object, msg: string): void },
  ) {}

  /** Something new was written to the outbox. */
  wake(): void {
    this.pending.wake();
  }

  async runWhileOnline(link: OnlineLink): Promise<void> {
    while (!link.signal.aborted) {
      try {
        if ((await this.sendSome(link)) === 'next link') return;
      } catch (err) {
        // The store failed (no descriptor left, disk trouble): log, wait a moment, go on.
        this.log.error({ err }, 'outbox not sent; retrying');
        await sleepUnless(RETRY_AFTER_MS, link.signal);
      }
    }
  }

  /** Sends what is in the outbox now, or waits for something to be written. */
  private async sendSome(link: OnlineLink): Promise<'more' | 'next link'> {
    const items = this.store.outbox(50);
    if (items.length === 0) {
      await this.pending.wait(link.signal);
      return 'more';
    }
    for (const item of items) {
      if (link.signal.aborted) return 'next link';
      try {
        await link.session.call(item.action, item.payload as never);
      } catch (err) {
        const code = err instanceof RpcError ? err.code : RpcErrorCode.InternalError;
        if (code === RpcErrorCode.Disconnected || code === RpcErrorCode.Timeout) return 'next link';
        // The cloud answered with an error: it has seen the message and refused it. Keep a trace, move on.
        this.log.error(
          { action: item.action, seq: item.seq, code, err: (err as Error).message },
          'cloud refused an outbox message',
        );
      }
      this.store.delivered(item.seq);
    }
    return 'more';
  }
}
