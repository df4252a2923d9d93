import type { CloudStore, TerminalRow } from '../store/store-types.js';
import { startSweep } from '../sweep.js';
import type { WebhookEvent, WebhookPayloads } from '../webhooks/webhooks.js';
import type { StatusReason, TerminalStatus } from './terminal-status.js';

/**
 * Status is derived (from the link and the last heartbeat), so nothing "happens" when a terminal
 * crosses a threshold. This watcher compares each terminal's derived status with the one it last
 * announced and emits the event for the change — at once on connect, disconnect and deactivation,
 * and on a periodic sweep for the time-based changes (needs_attention, offline, an expired
 * certificate). Each change is written to the terminal's status history with its reason.
 */
const EVENT_OF: Partial<
  Record<
    TerminalStatus,
    | 'terminal.online'
    | 'terminal.needs_attention'
    | 'terminal.offline'
    | 'terminal.error'
    | 'terminal.deactivated'
  >
> = {
  online: 'terminal.online',
  needs_attention: 'terminal.needs_attention',
  offline: 'terminal.offline',
  error: 'terminal.error',
  deactivated: 'terminal.deactivated',
};

export interface StatusAnnouncerOptions {
  store: CloudStore;
  /** The derived status, why, and when it began if the clock alone made it. */
  status(row: TerminalRow): { status: TerminalStatus; reason: StatusReason | null; sinceMs: number | null };
  now(): number;
  emit<K extends WebhookEvent>(type: K, data: WebhookPayloads[K]): Promise<void>;
  sweepMs: number;
  /** Whether this gateway leads the fleet's sweeps (one sweep for the fleet, not one per gateway). */
  lead(): Promise<boolean>;
  log: { warn(obj: object, msg: string): void };
}

export class StatusAnnouncer {
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly o: StatusAnnouncerOptions) {}

  start(): void {
    this.timer = startSweep(
      () => this.sweep(),
      this.o.sweepMs,
      (err) => this.o.log.warn({ err: err.message }, 'status sweep failed; tried again at the next'),
    );
  }

  stop(): void {
    clearInterval(this.timer);
  }

  async sweep(): Promise<void> {
    if (!(await this.o.lead())) return;
    // A page at a time, in the store's stable order: never every row in memory at once.
    let after: string | null = null;
    for (;;) {
      const rows = await this.o.store.terminals.page({}, { after, limit: 500 });
      for (const row of rows) await this.announce(row);
      if (rows.length < 500) return;
      after = rows[rows.length - 1]!.id;
    }
  }

  check(terminalId: string): Promise<void> {
    return this.checkMany([terminalId]);
  }

  /** Many at once (a heartbeat batch): one read for all, a transaction only for those that changed. */
  async checkMany(terminalIds: readonly string[]): Promise<void> {
    for (let i = 0; i < terminalIds.length; i += 500)
      for (const row of await this.o.store.terminals.getMany(terminalIds.slice(i, i + 500)))
        await this.announce(row);
  }

  private async announce(seen: TerminalRow): Promise<void> {
    if (this.o.status(seen).status === seen.announcedStatus) return;
    await this.o.store.transaction(async () => {
      // Read again inside the transaction: two checks of one terminal at once announce once.
      const row = await this.o.store.terminals.get(seen.id);
      if (!row) return;
      const { status, reason, sinceMs } = this.o.status(row);
      if (status === row.announcedStatus) return;
      // Its history gets the change with the time it happened (a threshold crossed between two
      // sweeps happened when it was crossed) and why.
      const won = await this.o.store.terminals.setAnnouncedStatus(
        row.id,
        row.announcedStatus,
        status,
        sinceMs ?? this.o.now(),
        reason,
      );
      // Another gateway announced this change between our read and our write: it sent the event.
      if (!won) return;
      const event = EVENT_OF[status];
      if (event)
        await this.o.emit(event, {
          id: row.id,
          terminalId: row.id,
          name: row.name,
          locationId: row.locationId,
          status,
          previousStatus: row.announcedStatus,
          statusReason: reason,
          lastSeen: row.lastSeen === null ? null : Math.floor(row.lastSeen / 1000),
        });
    });
  }
}
