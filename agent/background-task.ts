/**
 * Work the daemon starts and does not wait for (the loops that run while the link is up, timers).
 * A failure that escapes one is logged with its stack and the daemon goes on: a background loop
 * must never become an unhandled rejection that ends the process (a local app that exhausted the
 * descriptors once made `process.memoryUsage` throw inside the heartbeat loop and killed it).
 */
export interface BackgroundLog {
  error(obj: object, msg: string): void;
}

export function inBackground(name: string, task: Promise<unknown>, log: BackgroundLog): void {
  task.catch((err: unknown) => log.error({ task: name, err }, `${name} failed; the daemon goes on`));
}

/** Runs `fn` from a timer: a throw is logged with its stack, and the timer keeps firing. */
export function guarded(name: string, fn: () => void, log: BackgroundLog): () => void {
  return () => {
    try {
      fn();
    } catch (err) {
      log.error({ task: name, err }, `${name} failed; retried at its next run`);
    }
  };
}
