/** Runs `fn` now, then every `everyMs` (the timer does not keep the process alive); clearInterval stops it. */
export function startSweep(fn: () => void, everyMs: number): NodeJS.Timeout {
  fn();
  const timer = setInterval(fn, everyMs);
  timer.unref();
  return timer;
}
