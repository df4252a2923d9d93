/**
 * Runs `fn` now, then every `everyMs` (the timer does not keep the process alive); clearInterval
 * stops it. A sweep that is still running when the next is due is not started twice; a sweep that
 * fails is told to `onError` and the next one runs as planned.
 */
export function startSweep(
  fn: () => void | Promise<void>,
  everyMs: number,
  onError: (err: Error) => void,
): NodeJS.Timeout {
  let running = false;
  const tick = () => {
    if (running) return;
    running = true;
    let out: void | Promise<void>;
    try {
      out = fn();
    } catch (err) {
      running = false;
      onError(err as Error);
      return;
    }
    Promise.resolve(out)
      .catch((err: Error) => onError(err))
      .finally(() => {
        running = false;
      });
  };
  tick();
  const timer = setInterval(tick, everyMs);
  timer.unref();
  return timer;
}
