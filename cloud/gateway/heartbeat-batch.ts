import type { HeartbeatWrite } from '../store/store-types.js';

export interface HeartbeatBatchOptions {
  /** Writes a batch in one statement. */
  write(beats: readonly HeartbeatWrite[]): Promise<number>;
  /** After a batch is written: the terminals in it (their status may have changed). */
  flushed(ids: readonly string[]): Promise<void>;
  flushMs: number;
  log: { warn(obj: object, msg: string): void };
}

/**
 * A gateway's heartbeats, written in batches: each terminal's last beat is kept until the next
 * flush (every `flushMs`), then all of them go in one statement — not a row update per beat. A
 * terminal's beats in between only replace each other (the row keeps the last one anyway).
 */
export class HeartbeatBatch {
  private pending = new Map<string, HeartbeatWrite>();
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();

  constructor(private readonly o: HeartbeatBatchOptions) {}

  add(beat: HeartbeatWrite): void {
    this.pending.set(beat.id, beat);
  }

  start(): void {
    this.timer = setInterval(() => void this.flush(), this.o.flushMs);
    this.timer.unref();
  }

  /** Writes what is pending now (after the batch being written, if any). */
  flush(): Promise<void> {
    this.writing = this.writing.then(async () => {
      if (this.pending.size === 0) return;
      const beats = [...this.pending.values()];
      this.pending = new Map();
      try {
        await this.o.write(beats);
        await this.o.flushed(beats.map((b) => b.id));
      } catch (err) {
        this.o.log.warn({ beats: beats.length, err: (err as Error).message }, 'heartbeats not written');
      }
    });
    return this.writing;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }
}
