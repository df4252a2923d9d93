import { type Static, Type } from '@sinclair/typebox';
import { compileValidator } from './schema-validation.js';

/**
 * The one error model of both sides. Domain code refuses with a `Refusal` (a stable snake_case code,
 * a message for people, optional details); it knows nothing of HTTP. Only the two HTTP edges (the
 * agent's local API and the cloud's REST API) turn a code into a status, each with one table, and
 * answer with the one error body below. Clients parse that body with `parseErrorBody`, nowhere else.
 */
export class Refusal extends Error {
  override readonly name = 'Refusal';
  constructor(
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export function isRefusal(err: unknown): err is Refusal {
  return err instanceof Refusal;
}

/** `{error: {code, message, details?}}`: every error answer of the local API and the cloud's REST API. */
export const ErrorBodySchema = Type.Object({
  error: Type.Object({
    code: Type.String({ pattern: '^[a-z][a-z0-9_]*$', maxLength: 64 }),
    message: Type.String({ maxLength: 4096 }),
    details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  }),
});
export type ErrorBody = Static<typeof ErrorBodySchema>;

const validator = compileValidator(ErrorBodySchema);

export function errorBody(code: string, message: string, details?: Record<string, unknown>): ErrorBody {
  return {
    error: details && Object.keys(details).length > 0 ? { code, message, details } : { code, message },
  };
}

/**
 * The error body of an answer, from its parsed JSON or its raw text; undefined when the answer does
 * not carry one (a proxy's HTML page, an empty body, another shape). Never throws.
 */
export function parseErrorBody(body: unknown): ErrorBody['error'] | undefined {
  let value = body;
  if (typeof body === 'string' || Buffer.isBuffer(body)) {
    try {
      value = JSON.parse(body.toString());
    } catch {
      return undefined;
    }
  }
  const checked = validator.check(value);
  return checked.ok ? checked.value.error : undefined;
}
