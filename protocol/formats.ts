import { Type } from '@sinclair/typebox';

/** ISO 8601 UTC timestamp as `Date.prototype.toISOString()` writes it. */
export const IsoTime = Type.String({
  pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,6})?Z$',
  maxLength: 40,
  description: 'ISO 8601 UTC timestamp',
});
