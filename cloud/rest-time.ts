/**
 * The REST API's one timestamp convention (VINR's): Unix seconds, integers. Rows keep Unix
 * milliseconds; every view converts here. (The agent-facing enrollment and link protocol keeps ISO
 * 8601 strings, as docs/protocol.md says.)
 */
export function unixSeconds(ms: number): number {
  return Math.floor(ms / 1000);
}

export function unixSecondsOrNull(ms: number | null): number | null {
  return ms === null ? null : unixSeconds(ms);
}

/** An ISO 8601 time (what a device sends) as Unix seconds; null when it is none. */
export function unixSecondsOfIso(iso: string): number | null {
  const ms = Date.parse(iso);
  return Number.isFinite(ms) ? unixSeconds(ms) : null;
}
