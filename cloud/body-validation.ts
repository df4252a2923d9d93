import type { Static, TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { Refusal } from '../protocol/refusal.js';
import { describeIssues, type Validator } from '../protocol/schema-validation.js';

/** Bodies that came form-encoded: every value a string, to convert to what the schema says. */
const formBodies = new WeakSet<object>();

export function markForm<T extends object>(body: T): T {
  formBodies.add(body);
  return body;
}

export function isFormBody(body: unknown): boolean {
  return typeof body === 'object' && body !== null && formBodies.has(body);
}

/**
 * Checks a request body against a schema; refuses with every issue named when it does not fit.
 * A form body's strings are first converted where the schema wants a number or a boolean
 * (`ttlSeconds=600`, `active=false`); what does not convert is refused as it is.
 */
export function parseBody<T extends TSchema>(
  v: Validator<T>,
  body: unknown,
  code = 'invalid_request',
): Static<T> {
  const value = isFormBody(body) ? Value.Convert(v.schema, body) : body;
  const r = v.check(value);
  if (!r.ok) throw new Refusal(code, describeIssues(r.issues));
  return r.value;
}
