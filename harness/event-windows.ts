/** The most events inside any window of `ms` (half-open, sliding over the sorted times): the fan-out's rate limits, measured. */
export function mostInWindow(times: number[], ms: number): number {
  const t = [...times].sort((a, b) => a - b);
  let most = 0;
  for (let i = 0, j = 0; i < t.length; i++) {
    while (t[i]! - t[j]! >= ms) j++;
    most = Math.max(most, i - j + 1);
  }
  return most;
}
