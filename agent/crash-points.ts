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
