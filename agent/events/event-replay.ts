/**
 * The replay window of the local API's event stream — pure. Every event gets an id
 * `<run>-<n>`: `run` tells this daemon's run from the last one (base 36 of its start time), `n`
 * counts up from 1. The last `maxEvents` events are kept, so an
 * app that reconnects with `Last-Event-ID` gets what it missed — or, when that is no longer here
 * (the daemon restarted, the window moved on), is told it missed some.
 */
/** One kept event. Its SSE frame is made the first time a reader needs it, then reused for all. */
export class StoredEvent {
  private text: string | undefined;

  constructor(
    readonly id: string,
    readonly n: number,
    readonly event: string,
    readonly data: unknown,
  ) {}

  /** The whole SSE frame: `id:`/`event:`/`data:` lines and the blank line. */
  get frame(): string {
    this.text ??= `id: ${this.id}\nevent: ${this.event}\ndata: ${JSON.stringify(this.data)}\n\n`;
    return this.text;
  }
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
  /** Events kept; each is small and bounded by its schema (a record, a link state, a config). */
  maxEvents: number;
}

export const DEFAULT_REPLAY: ReplayLimits = { maxEvents: 1000 };

const ID = /^([0-9a-z]{1,12})-([0-9]{1,15})$/;

export class ReplayWindow {
  /** The kept events are `events[head…]`; the array is compacted now and then (no shift per event). */
  private events: StoredEvent[] = [];
  private head = 0;
  private n = 0;

  constructor(
    readonly runId: string,
    private readonly limits: ReplayLimits = DEFAULT_REPLAY,
  ) {}

  /** Gives the event its id and keeps it; returns it. */
  append(event: string, data: unknown): StoredEvent {
    this.n++;
    const stored = new StoredEvent(`${this.runId}-${this.n}`, this.n, event, data);
    this.events.push(stored);
    if (this.kept() > this.limits.maxEvents) this.head++;
    if (this.head > 1024 && this.head > this.kept()) {
      this.events = this.events.slice(this.head);
      this.head = 0;
    }
    return stored;
  }

  private kept(): number {
    return this.events.length - this.head;
  }

  /** What came after `lastEventId`, if all of it is still here. */
  since(lastEventId: string): Replay {
    const oldest = this.events[this.head];
    const oldestId = oldest?.id ?? null;
    const m = ID.exec(lastEventId.trim());
    if (!m) return { ok: false, reason: 'invalid', oldestId };
    if (m[1] !== this.runId) return { ok: false, reason: 'restarted', oldestId };
    const last = Number(m[2]);
    if (last > this.n) return { ok: false, reason: 'invalid', oldestId };
    const first = oldest?.n ?? this.n + 1;
    // Everything after `last` must still be here: the next one is `last + 1`.
    if (last + 1 < first) return { ok: false, reason: 'too_old', oldestId };
    // Numbers are consecutive: the events after `last` start at a known index.
    return { ok: true, events: this.events.slice(this.head + Math.max(0, last + 1 - first)) };
  }
}

/** A run id for this process: base 36 of its start time (ms), so ids from an earlier run never match. */
export function newRunId(nowMs: number): string {
  return Math.floor(nowMs).toString(36);
}
