/**
 * Fan-out without lock-step (issue 24 item 3). A template change touches every terminal of its
 * location at once, and a deployment's tick claims a share of its group: sent together, a fleet's
 * links would all be busy in the same second and its timers would line up after it (balena's
 * lesson). Two shapes, one rule — never more than the limit, each start jittered:
 *
 * - `Pacer`: a queue that starts at most `perSecond` a second, one at a time, each gap one slot
 *   (1 / perSecond) plus a random half slot, so no window of a second holds more than `perSecond`
 *   starts (+1 at its edge). A lone push, after a quiet slot, starts at once. A key added again
 *   before its turn goes once (a config push sends the latest desired config when it runs).
 * - `spreadOver`: a tick's claimed work spread over the tick, each item at its slot plus jitter.
 */
export interface PacerOptions {
  perSecond: number;
  run(key: string): Promise<void>;
  onError(key: string, err: Error): void;
  now(): number;
  random(): number;
}

export class Pacer {
  private readonly queue = new Set<string>();
  private nextAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly slotMs: number;
  private readonly idleWaiters: (() => void)[] = [];

  constructor(private readonly o: PacerOptions) {
    if (!(o.perSecond > 0)) throw new Error(`a pacer needs a rate above 0 (got ${o.perSecond})`);
    this.slotMs = 1000 / o.perSecond;
  }

  add(keys: Iterable<string>): void {
    if (this.stopped) return;
    for (const k of keys) this.queue.add(k);
    this.drain();
  }

  /** Keys waiting for their turn. */
  get pending(): number {
    return this.queue.size;
  }

  /** Resolves when nothing waits (the last start may still be running). */
  idle(): Promise<void> {
    if (this.queue.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.queue.clear();
    for (const w of this.idleWaiters.splice(0)) w();
  }

  private drain(): void {
    if (this.timer || this.stopped) return;
    const now = this.o.now();
    if (now < this.nextAt) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.drain();
      }, this.nextAt - now);
      return;
    }
    const [key] = this.queue;
    if (key === undefined) return;
    this.queue.delete(key);
    this.nextAt = now + this.slotMs * (1 + 0.5 * this.o.random());
    this.o.run(key).catch((err: Error) => this.o.onError(key, err));
    if (this.queue.size === 0) for (const w of this.idleWaiters.splice(0)) w();
    else this.drain();
  }
}

/**
 * Runs `fn` for each item, spread over `ms`: item i at its slot i·ms/n plus a random part of a
 * slot. Resolves when every run has ended (each one's failure is `onError`'s, not the caller's).
 * With `ms` 0 they run one after the other at once (tests that step a clock).
 */
export async function spreadOver<T>(
  items: readonly T[],
  ms: number,
  random: () => number,
  fn: (item: T) => Promise<void>,
  onError: (item: T, err: Error) => void,
): Promise<void> {
  if (ms <= 0 || items.length <= 1) {
    for (const item of items) await fn(item).catch((err: Error) => onError(item, err));
    return;
  }
  const slot = ms / items.length;
  await Promise.all(
    items.map(
      (item, i) =>
        new Promise<void>((resolve) => {
          setTimeout(
            () => {
              fn(item)
                .catch((err: Error) => onError(item, err))
                .finally(resolve);
            },
            Math.floor(i * slot + random() * slot),
          );
        }),
    ),
  );
}
