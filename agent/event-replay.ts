/**
 * The replay window of the local API's event stream — pure. Every event gets an id
 * `<run>-<n>`: `run` tells this daemon's run from the last one (base 36 of its start time), `n`
 * counts up from 1. The last `maxEvents` events (and at most `maxBytes` of them) are kept, so an
 * app that reconnects with `Last-Event-ID` gets what it missed — or, when that is no longer here
 * (the daemon restarted, the window moved on), is told it missed some.
 */
export interface StoredEvent {
  id: string;
  n: number;
  /** The whole SSE frame, `id:`/`event:`/`data:` lines and the blank line: made once, written to every reader. */
  frame: string;
}

export type Replay =
  | { ok: true; events: StoredEvent[] }
  | {
      ok: false;
      /** `restarted`: the id is from an earlier run; `too_old`: it left the window; `invalid`: not one of ours. */
      reason: 'restarted' | 'too_old' | 'invalid';
      oldestId: string | null;
    };

export interface ReplayLimits {
  maxEvents: number;
  maxBytes: number;
}

export const DEFAULT_REPLAY: ReplayLimits = { maxEvents: 1000, maxBytes: 512 * 1024 };

const ID = /^([0-9a-z]{1,12})-([0-9]{1,15})$/;

export class ReplayWindow {
  private readonly events: StoredEvent[] = [];
  private bytes = 0;
  private n = 0;

  constructor(
    readonly runId: string,
    private readonly limits: ReplayLimits = DEFAULT_REPLAY,
  ) {}

  /** Gives the event its id and keeps it; returns it. */
  append(event: string, data: unknown): StoredEvent {
    this.n++;
    const id = `${this.runId}-${this.n}`;
    const stored = { id, n: this.n, frame: `id: ${id}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n` };
    this.events.push(stored);
    this.bytes += stored.frame.length;
    while (
      this.events.length > this.limits.maxEvents ||
      (this.bytes > this.limits.maxBytes && this.events.length > 1)
    ) {
      this.bytes -= this.events.shift()!.frame.length;
    }
    return stored;
  }

  /** What came after `lastEventId`, if all of it is still here. */
  since(lastEventId: string): Replay {
    const oldestId = this.events[0]?.id ?? null;
    const m = ID.exec(lastEventId.trim());
    if (!m) return { ok: false, reason: 'invalid', oldestId };
    if (m[1] !== this.runId) return { ok: false, reason: 'restarted', oldestId };
    const last = Number(m[2]);
    if (last > this.n) return { ok: false, reason: 'invalid', oldestId };
    const first = this.events[0]?.n ?? this.n + 1;
    // Everything after `last` must still be here: the next one is `last + 1`.
    if (last + 1 < first) return { ok: false, reason: 'too_old', oldestId };
    return { ok: true, events: this.events.filter((e) => e.n > last) };
  }
}

/** A run id for this process: base 36 of its start time (ms), so ids from an earlier run never match. */
export function newRunId(nowMs: number): string {
  return Math.floor(nowMs).toString(36);
}
