import type { CloudStore, TerminalRow } from '../store/store-types.js';
import { startSweep } from '../sweep.js';
import type { WebhookEvent, WebhookPayloads } from '../webhooks/webhooks.js';
import type { TerminalStatus } from './terminal-status.js';

/**
 * Status is derived (from the link and the last heartbeat), so nothing "happens" when a terminal
 * crosses a threshold. This watcher compares each terminal's derived status with the one it last
 * announced and emits the event for the change — at once on connect, disconnect and deactivation,
 * and on a periodic sweep for the time-based changes (needs_attention, offline).
 */
const EVENT_OF: Partial<
  Record<
    TerminalStatus,
    'terminal.online' | 'terminal.needs_attention' | 'terminal.offline' | 'terminal.deactivated'
  >
> = {
  online: 'terminal.online',
  needs_attention: 'terminal.needs_attention',
  offline: 'terminal.offline',
  deactivated: 'terminal.deactivated',
};

export interface StatusAnnouncerOptions {
  store: CloudStore;
  status(row: TerminalRow): TerminalStatus;
  emit<K extends WebhookEvent>(type: K, data: WebhookPayloads[K]): void;
  sweepMs: number;
}

export class StatusAnnouncer {
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly o: StatusAnnouncerOptions) {}

  start(): void {
    this.timer = startSweep(() => this.sweep(), this.o.sweepMs);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  sweep(): void {
    for (const row of this.o.store.terminals.list(null)) this.announce(row);
  }

  check(terminalId: string): void {
    const row = this.o.store.terminals.get(terminalId);
    if (row) this.announce(row);
  }

  private announce(row: TerminalRow): void {
    const status = this.o.status(row);
    if (status === row.announcedStatus) return;
    this.o.store.transaction(() => {
      this.o.store.terminals.setAnnouncedStatus(row.id, status);
      const event = EVENT_OF[status];
      if (event)
        this.o.emit(event, {
          terminalId: row.id,
          name: row.name,
          locationId: row.locationId,
          status,
          previousStatus: row.announcedStatus,
          lastSeen: row.lastSeen === null ? null : Math.floor(row.lastSeen / 1000),
        });
    });
  }
}
