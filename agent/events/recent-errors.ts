import type { EventBus, PublishedEvent } from './event-bus.js';

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
export function problemIn(e: PublishedEvent): Omit<RecentError, 'at' | 'count'> | null {
  switch (e.event) {
    case 'link': {
      const d = e.data;
      if ((d.state === 'offline' || d.state === 'error') && d.reason !== null && d.reason !== 'agent stopped')
        return { source: 'link', message: `${d.state}: ${d.reason}` };
      return null;
    }
    case 'config': {
      const d = e.data;
      if (d.status !== 'rejected') return null;
      return {
        source: 'config',
        message: `version ${d.version} refused: ${d.errors.map((x) => `${x.path || '/'} ${x.message}`).join('; ')}`,
      };
    }
    case 'enrollment':
      return e.data.state === 'failed' ? { source: 'enrollment', message: e.data.reason } : null;
    case 'action':
      return e.data.status === 'failed'
        ? { source: 'action', message: `${e.data.type} failed: ${e.data.reason ?? 'no reason'}` }
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
