/**
 * The local API's one table from a refusal's code to its HTTP status. Domain code throws a
 * `Refusal` (protocol/refusal.ts) and knows nothing of HTTP; the local API answers it with the
 * status named here and the one error body. A code missing here is a defect: it answers 500
 * `internal_error` (and test/agent/local-api/local-api-statuses.test.ts finds every code the agent throws).
 */
export const LOCAL_API_STATUS = {
  // the request itself
  invalid_json: 400,
  invalid_request: 400,
  not_found: 404,
  method_not_allowed: 405,
  request_timeout: 408,
  body_too_large: 413,
  too_many_connections: 503,
  too_many_streams: 503,
  // the terminal's state
  not_enrolled: 503,
  terminal_deactivated: 410,
  terminal_locked: 423,
  diagnostics_unavailable: 501,
  renewal_failed: 503,
  storage_full: 507,
  // transactions
  invalid_transaction: 422,
  card_unsupported: 422,
  idempotency_conflict: 409,
  offline_disabled: 409,
  offline_limit_exceeded: 409,
  // busy leases
  invalid_lease: 422,
  lease_not_found: 404,
  // what the API answers when a handler fails unexpectedly
  internal_error: 500,
} as const satisfies Record<string, number>;

export type LocalApiCode = keyof typeof LOCAL_API_STATUS;

/** The status a refusal with this code is answered with; undefined for a code the table lacks. */
export function localApiStatus(code: string): number | undefined {
  return Object.hasOwn(LOCAL_API_STATUS, code) ? LOCAL_API_STATUS[code as LocalApiCode] : undefined;
}

/** Refusals after which the connection is closed: the rest of the request is never read. */
export const CLOSES_CONNECTION: ReadonlySet<string> = new Set([
  'body_too_large',
  'request_timeout',
  'too_many_connections',
  'too_many_streams',
]);
