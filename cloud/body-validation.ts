import type { Static, TSchema } from '@sinclair/typebox';
import { Refusal } from '../protocol/refusal.js';
import { describeIssues, type Validator } from '../protocol/schema-validation.js';

/** Checks a request body against a schema; refuses with every issue named when it does not fit. */
export function parseBody<T extends TSchema>(
  v: Validator<T>,
  body: unknown,
  code = 'invalid_request',
): Static<T> {
  const r = v.check(body);
  if (!r.ok) throw new Refusal(code, describeIssues(r.issues));
  return r.value;
}
