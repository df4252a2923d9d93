import { readFileSync } from 'node:fs';

/**
 * Where a process's main thread spent its time, from a V8 CPU profile (`--cpu-prof`): self time
 * summed by function (name, file, line) and by file, over the whole profile, its first seconds
 * (`firstMs`) or its last (`lastMs`).
 * Time blocked in a synchronous call (an fsync under a SQLite commit) is the calling frame's:
 * the profile samples wall time on the main thread, so this answers "what held the event loop".
 */
interface CpuProfile {
  startTime: number;
  endTime: number;
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  /** Wall time covered, ms. */
  totalMs: number;
  topFunctions: { what: string; ms: number; pct: number }[];
  topFiles: { file: string; ms: number; pct: number }[];
}

export function summarizeCpuProfile(
  file: string,
  firstMs = Number.POSITIVE_INFINITY,
  n = 15,
  lastMs = Number.POSITIVE_INFINITY,
): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const covered = p.timeDeltas.reduce((a, b) => a + b, 0) / 1000;
  const fromMs = covered - lastMs;
  const byId = new Map(p.nodes.map((node) => [node.id, node.callFrame]));
  const fns = new Map<string, number>();
  const files = new Map<string, number>();
  let t = 0;
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = (p.timeDeltas[i] ?? 0) / 1000;
    t += dt;
    if (t > firstMs) break;
    if (t < fromMs) continue;
    total += dt;
    const f = byId.get(p.samples[i]!);
    if (!f) continue;
    const short = f.url.replace(/^.*\/(dist|node_modules)\//, '$1/').replace(/^file:\/\//, '');
    const what = `${f.functionName || '(anonymous)'} ${short}${short ? `:${f.lineNumber + 1}` : ''}`;
    fns.set(what, (fns.get(what) ?? 0) + dt);
    const fileKey = short || f.functionName;
    files.set(fileKey, (files.get(fileKey) ?? 0) + dt);
  }
  const top = <K extends string>(m: Map<string, number>, key: K) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, ms]) => ({ [key]: k, ms: Math.round(ms), pct: +((ms / total) * 100).toFixed(1) }));
  return {
    totalMs: Math.round(total),
    topFunctions: top(fns, 'what') as ProfileSummary['topFunctions'],
    topFiles: top(files, 'file') as ProfileSummary['topFiles'],
  };
}
