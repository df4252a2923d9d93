import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { SealedCard } from '../../protocol/card-envelope.js';
import type { OpenedCard, OpenReply, OpenRequest } from './envelope-worker.js';

export type { OpenedCard };

/**
 * Opens sealed card envelopes in a pool of worker threads (node:worker_threads), so that an RSA
 * private-key operation per card never runs on the event loop that answers REST calls and agent
 * links. Work is queued in chunks, first come first served, with a bound on the envelopes
 * waiting: past it `open` refuses at once (PoolBusyError) rather than queueing without end.
 * Workers start on first use and are replaced if one dies.
 */
export class PoolBusyError extends Error {
  override readonly name = 'PoolBusyError';
}

export interface EnvelopePoolOptions {
  dataPrivateKeyPem: string;
  /** Worker threads (default: one per core but one, 1–4). */
  size?: number;
  /** Envelopes queued or being opened, at most; past it `open` refuses. */
  maxQueued: number;
  /** Envelopes per task handed to a worker. */
  chunkSize?: number;
  log: { warn(obj: object, msg: string): void };
}

interface Task {
  request: OpenRequest;
  resolve(results: OpenedCard[]): void;
  reject(err: Error): void;
}

interface Slot {
  worker: Worker;
  task: Task | null;
}

/** The worker's entry point: beside this file (tsc output), or one level up (the bundle's chunks/). */
function workerFile(): string {
  for (const rel of ['./envelope-worker.js', '../envelope-worker.js']) {
    const f = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(f)) return f;
  }
  throw new Error('envelope-worker.js is missing beside the cloud (a broken build)');
}

export function defaultPoolSize(): number {
  return Math.max(1, Math.min(4, availableParallelism() - 1));
}

export class EnvelopePool {
  private readonly slots: Slot[] = [];
  private readonly queue: Task[] = [];
  private queued = 0;
  private nextId = 1;
  private closed = false;
  private readonly size: number;
  private readonly chunkSize: number;

  constructor(private readonly o: EnvelopePoolOptions) {
    this.size = o.size ?? defaultPoolSize();
    this.chunkSize = o.chunkSize ?? 50;
  }

  /** Envelopes queued or being opened now. */
  get pending(): number {
    return this.queued;
  }

  /** Opens every envelope; the results are in the same order. */
  async open(envelopes: SealedCard[]): Promise<OpenedCard[]> {
    if (envelopes.length === 0) return [];
    if (this.closed) throw new PoolBusyError('the cloud is stopping');
    if (this.queued + envelopes.length > this.o.maxQueued)
      throw new PoolBusyError(
        `the cloud is opening ${this.queued} card envelopes already (at most ${this.o.maxQueued} wait)`,
      );
    this.queued += envelopes.length;
    const chunks: Promise<OpenedCard[]>[] = [];
    for (let i = 0; i < envelopes.length; i += this.chunkSize) {
      const part = envelopes.slice(i, i + this.chunkSize);
      chunks.push(
        new Promise<OpenedCard[]>((resolve, reject) => {
          this.queue.push({ request: { id: this.nextId++, envelopes: part }, resolve, reject });
        }).finally(() => {
          this.queued -= part.length;
        }),
      );
    }
    this.dispatch();
    return (await Promise.all(chunks)).flat();
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.queue.splice(0)) t.reject(new PoolBusyError('the cloud is stopping'));
    await Promise.all(this.slots.splice(0).map((s) => s.worker.terminate()));
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      let slot = this.slots.find((s) => s.task === null);
      if (!slot && this.slots.length < this.size) slot = this.spawn();
      if (!slot) return;
      const task = this.queue.shift()!;
      slot.task = task;
      slot.worker.postMessage(task.request);
    }
  }

  private spawn(): Slot {
    const worker = new Worker(workerFile(), { workerData: { dataPrivateKeyPem: this.o.dataPrivateKeyPem } });
    worker.unref();
    const slot: Slot = { worker, task: null };
    worker.on('message', (reply: OpenReply) => {
      const task = slot.task;
      slot.task = null;
      if (task && task.request.id === reply.id) task.resolve(reply.results);
      this.dispatch();
    });
    const lost = (why: string) => {
      const i = this.slots.indexOf(slot);
      if (i < 0) return;
      this.slots.splice(i, 1);
      slot.task?.reject(new Error(`an envelope worker stopped: ${why}`));
      slot.task = null;
      if (!this.closed) {
        this.o.log.warn({ why }, 'envelope worker stopped; starting another');
        this.dispatch();
      }
    };
    worker.on('error', (err) => lost(err.message));
    worker.on('exit', (code) => lost(`exit ${code}`));
    this.slots.push(slot);
    return slot;
  }
}
