import { Type } from '@sinclair/typebox';

/** ISO 8601 UTC timestamp as `Date.prototype.toISOString()` writes it. */
export const IsoTime = Type.String({
  pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,6})?Z$',
  maxLength: 40,
  description: 'ISO 8601 UTC timestamp',
});

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
