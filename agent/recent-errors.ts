import type { AgentEvent, EventBus } from './event-bus.js';

/**
 * The daemon's recent problems, newest last, for `posagent menu`'s "Last errors" and
 * `GET /v1/errors`: every time the link went down or was refused (a cloud restart included, even
 * when it came back at once), a refused config, a failed enrollment attempt, a failed action.
 * Kept in memory, bounded; the journal keeps the full story.
 */
export interface RecentError {
  /** The last time it happened. */
  at: string;
  source: 'link' | 'config' | 'enrollment' | 'action';
  message: string;
  /** How many times in a row (a cloud that stays down is one entry, not fifty). */
  count: number;
}

export const RECENT_ERRORS_KEPT = 50;

/** The problem an event tells of, if it tells of one — pure. */
export function problemIn(e: Pick<AgentEvent, 'event' | 'data'>): Omit<RecentError, 'at' | 'count'> | null {
  const d = e.data as Record<string, unknown>;
  switch (e.event) {
    case 'link':
      if (
        (d.state === 'offline' || d.state === 'error') &&
        typeof d.reason === 'string' &&
        d.reason !== 'agent stopped'
      )
        return { source: 'link', message: `${d.state}: ${d.reason}` };
      return null;
    case 'config':
      if (d.status === 'rejected') {
        const errors = (d.errors as { path: string; message: string }[] | undefined) ?? [];
        return {
          source: 'config',
          message: `version ${d.version} refused: ${errors.map((x) => `${x.path || '/'} ${x.message}`).join('; ')}`,
        };
      }
      return null;
    case 'enrollment':
      return d.state === 'failed' ? { source: 'enrollment', message: String(d.reason) } : null;
    case 'action':
      return d.status === 'failed'
        ? { source: 'action', message: `${d.type} failed: ${d.reason ?? 'no reason'}` }
        : null;
    default:
      return null;
  }
}

export class RecentErrors {
  private readonly kept: RecentError[] = [];

  constructor(bus: EventBus, now: () => number = Date.now) {
    bus.subscribe((e) => {
      const p = problemIn(e);
      if (!p) return;
      const at = new Date(now()).toISOString();
      const last = this.kept[this.kept.length - 1];
      if (last && last.source === p.source && last.message === p.message) {
        last.at = at;
        last.count++;
        return;
      }
      this.kept.push({ at, ...p, count: 1 });
      if (this.kept.length > RECENT_ERRORS_KEPT) this.kept.shift();
    });
  }

  list(): RecentError[] {
    return this.kept.map((e) => ({ ...e }));
  }
}
