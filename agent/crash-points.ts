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
