/**
 * Named points where a test can make the real daemon die by SIGKILL (`POSAGENT_CRASH_POINT=name`),
 * to prove that a power cut exactly there loses nothing. Off unless the variable is set; the
 * composition root reads it once. Points: renewal-received/-staged/-committed/-renaming
 * (certificate renewal), update-unpacked/-switched (software update).
 */
export type CrashPoint = (name: string) => void;

export function crashPointFromEnv(env: Record<string, string | undefined>): CrashPoint {
  const target = env.POSAGENT_CRASH_POINT;
  if (!target) return () => {};
  return (name) => {
    if (name === target) process.kill(process.pid, 'SIGKILL');
  };
}

/**
 * Test hook: with `POSAGENT_BLOCK_LOOP_MS=n`, SIGUSR2 makes the process spin for n ms without
 * yielding — a stuck event loop, to show that the systemd watchdog pings stop with it.
 */
export function installLoopBlocker(env: Record<string, string | undefined>): void {
  const ms = Number(env.POSAGENT_BLOCK_LOOP_MS ?? 0);
  if (!(ms > 0)) return;
  process.on('SIGUSR2', () => {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      // deliberately blocking
    }
  });
}

/**
 * Test hook: with `POSAGENT_INJECT_FAULT=unhandled-rejection` (or `uncaught-exception`), SIGUSR2
 * makes the process fail that way from a timer — to show that such a failure is logged with its
 * stack and ends the process with a non-zero code, never silently.
 */
export function installFaultInjection(env: Record<string, string | undefined>): void {
  const fault = env.POSAGENT_INJECT_FAULT;
  if (fault !== 'unhandled-rejection' && fault !== 'uncaught-exception') return;
  process.on('SIGUSR2', () => {
    setTimeout(() => {
      if (fault === 'unhandled-rejection')
        void Promise.reject(new Error('injected fault: a rejected promise'));
      else throw new Error('injected fault: a thrown exception');
    }, 0);
  });
}

/**
 * Test hook: with `POSAGENT_CLOCK_OFFSET_MS=n` the agent's own clock (maintenance windows, action
 * expiry, heartbeats' times) runs n ms off the host's, like the cloud's `--clock-offset-sec`; TLS
 * still checks certificates against the host's clock. Null: the host's clock.
 */
export function clockFromEnv(env: Record<string, string | undefined>): (() => number) | null {
  const offset = Number(env.POSAGENT_CLOCK_OFFSET_MS ?? 0);
  if (!Number.isFinite(offset) || offset === 0) return null;
  return () => Date.now() + offset;
}
