import { Type } from '@sinclair/typebox';

/** ISO 8601 UTC timestamp as `Date.prototype.toISOString()` writes it. */
export const IsoTime = Type.String({
  pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,6})?Z$',
  maxLength: 40,
  description: 'ISO 8601 UTC timestamp',
});

/**
 * An IsoTime's instant in ms, or null when it names no real time: `Date.parse` reads
 * "2099-02-30T00:00:00Z" as 2 March and "…T99:99:99Z" as NaN; a time is real only when it
 * writes back as itself.
 */
export function isoTimeMs(s: string): number | null {
  const ms = Date.parse(s);
  if (!Number.isFinite(ms)) return null;
  return new Date(ms).toISOString().slice(0, 19) === s.slice(0, 19) ? ms : null;
}

/**
 * A name people give things (a terminal, a store): 1–100 characters, no control characters — a
 * name is printed on technicians' terminals, and an escape sequence in it would drive them.
 */
export const DisplayName = Type.String({
  minLength: 1,
  maxLength: 100,
  pattern: '^[^\\u0000-\\u001f\\u007f-\\u009f]+$',
  description: 'a display name: 1–100 characters, no control characters',
});

export { printable } from './printable.js';
