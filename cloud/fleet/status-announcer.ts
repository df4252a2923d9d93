import type { CloudStore, TerminalRow } from '../store/cloud-store.js';
import type { WebhookEvent } from '../webhooks/webhooks.js';
import type { TerminalStatus } from './terminal-status.js';

/**
 * Status is derived (from the link and the last heartbeat), so nothing "happens" when a terminal
 * crosses a threshold. This watcher compares each terminal's derived status with the one it last
 * announced and emits the event for the change — at once on connect, disconnect and deactivation,
 * and on a periodic sweep for the time-based changes (needs_attention, offline).
 */
const EVENT_OF: Partial<Record<TerminalStatus, WebhookEvent>> = {
  online: 'terminal.online',
  needs_attention: 'terminal.needs_attention',
  offline: 'terminal.offline',
  deactivated: 'terminal.deactivated',
};

export interface StatusAnnouncerOptions {
  store: CloudStore;
  status(row: TerminalRow): TerminalStatus;
  emit(type: WebhookEvent, data: Record<string, unknown>): void;
  sweepMs: number;
}

export class StatusAnnouncer {
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly o: StatusAnnouncerOptions) {}

  start(): void {
    this.sweep();
    this.timer = setInterval(() => this.sweep(), this.o.sweepMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  sweep(): void {
    for (const row of this.o.store.listTerminals(null)) this.announce(row);
  }

  check(terminalId: string): void {
    const row = this.o.store.getTerminal(terminalId);
    if (row) this.announce(row);
  }

  private announce(row: TerminalRow): void {
    const status = this.o.status(row);
    if (status === row.announcedStatus) return;
    this.o.store.atomically(() => {
      this.o.store.setAnnouncedStatus(row.id, status);
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
