/**
 * Sleeps `ms`, ending early when any of the signals aborts; resolves true when it slept the whole
 * time. Its listeners are removed when it ends. (Node 20's `AbortSignal.any` keeps every composite
 * signal referenced from its sources: built per heartbeat on the link's long-lived signal it grew
 * the daemon by ~60 bytes a beat — megabytes over months.)
 */
export function sleepUnless(ms: number, ...signals: AbortSignal[]): Promise<boolean> {
  return new Promise((resolve) => {
    if (signals.some((s) => s.aborted)) {
      resolve(false);
      return;
    }
    const done = (whole: boolean) => {
      clearTimeout(timer);
      for (const s of signals) s.removeEventListener('abort', onAbort);
      resolve(whole);
    };
    const onAbort = () => done(false);
    const timer = setTimeout(() => done(true), ms);
    for (const s of signals) s.addEventListener('abort', onAbort, { once: true });
  });
}
