/**
 * Fan-out without lock-step (issue 24 item 3). A template change touches every terminal of its
 * location at once, and a deployment's group is hundreds of terminals: sent together, a fleet's
 * links would all be busy in the same second, its downloads would start together, and its timers
 * would line up after it (balena's lesson). The rule, one piece of code for both:
 *
 * A queue that starts at most `perSecond` a second, one at a time, each gap one slot
 * (1 / perSecond) plus a random half slot: no window of a second (or a minute) holds more than
 * its limit of starts, and they never line up. A lone item, after a quiet slot, starts at once. A
 * key added again before its turn goes once, with its latest item (a config push sends the latest
 * desired config when it runs).
 */
export interface PacerOptions<T> {
  perSecond: number;
  run(item: T, key: string): Promise<void>;
  onError(key: string, err: Error): void;
  now(): number;
  random(): number;
}

export class Pacer<T = string> {
  private readonly queue = new Map<string, T>();
  private nextAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly slotMs: number;
  private readonly idleWaiters: (() => void)[] = [];

  constructor(private readonly o: PacerOptions<T>) {
    if (!(o.perSecond > 0)) throw new Error(`a pacer needs a rate above 0 (got ${o.perSecond})`);
    this.slotMs = 1000 / o.perSecond;
  }

  add(key: string, item: T): void {
    if (this.stopped) return;
    this.queue.set(key, item);
    this.drain();
  }

  /** Items waiting for their turn. */
  get pending(): number {
    return this.queue.size;
  }

  /** Resolves when nothing waits (the last start may still be running). */
  idle(): Promise<void> {
    if (this.queue.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Drops what waits; nothing starts after this. */
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
    const next = this.queue.entries().next();
    if (next.done) return;
    const [key, item] = next.value;
    this.queue.delete(key);
    this.nextAt = now + this.slotMs * (1 + 0.5 * this.o.random());
    this.o.run(item, key).catch((err: Error) => this.o.onError(key, err));
    if (this.queue.size === 0) for (const w of this.idleWaiters.splice(0)) w();
    else this.drain();
  }
}
