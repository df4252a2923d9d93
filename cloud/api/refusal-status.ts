import { type ErrorBody, errorBody, Refusal } from '../../protocol/refusal.js';

/**
 * The one place the cloud turns a refusal's code into an HTTP status: the REST API's answers and
 * the gateway's refused upgrades both look here. Services throw `Refusal(code, message, details)`
 * and know nothing of HTTP.
 *
 * Three codes mean two things on the wire today (GUIDE §5 keeps every status byte for byte); the
 * refusal says which with `details.kind`, and the entry `code/kind` wins over `code`:
 * - `terminal_deactivated`: 409 for an operation on a deactivated terminal, 403 when a deactivated
 *   terminal's certificate is refused (`kind: "authentication"`, cloud/gateway/terminal-auth.ts);
 * - `invalid_request`, `invalid_release`: 400 for a request of the wrong shape, 422 when the shape
 *   is right and the content is not (`kind: "content"`: a key that is no key, a tarball that is none).
 */
export const STATUS_OF: Readonly<Record<string, number>> = {
  // the request's shape
  invalid_json: 400,
  invalid_form: 400,
  invalid_path: 400,
  invalid_request: 400,
  invalid_config: 400,
  invalid_action: 400,
  invalid_deployment: 400,
  invalid_release: 400,
  invalid_csr: 400,
  webhook_target_refused: 400,
  subprotocol_required: 400,
  weak_password: 400,
  // who is asking
  unauthorized: 401,
  sign_in_failed: 401,
  csrf_failed: 403,
  forbidden: 403,
  client_certificate_required: 401,
  client_certificate_rejected: 403,
  certificate_expired: 403,
  certificate_not_yet_valid: 403,
  certificate_superseded: 403,
  certificate_revoked: 403,
  unknown_terminal: 403,
  auto_enrollment_refused: 403,
  'terminal_deactivated/authentication': 403,
  // what is asked for
  not_found: 404,
  invalid_code: 404,
  action_not_found: 404,
  release_not_found: 404,
  method_not_allowed: 405,
  request_timeout: 408,
  // the state it is in
  code_used: 409,
  terminal_deactivated: 409,
  terminal_offline: 409,
  already_preregistered: 409,
  already_registered: 409,
  release_exists: 409,
  already_exists: 409,
  slug_taken: 409,
  location_inactive: 409,
  code_revoked: 410,
  release_key_not_configured: 409,
  operator_exists: 409,
  invalid_state: 409,
  code_expired: 410,
  body_too_large: 413,
  unsupported_media_type: 415,
  range_not_satisfiable: 416,
  // well-formed, but not acceptable
  'invalid_request/content': 422,
  'invalid_release/content': 422,
  invalid_certificate: 422,
  attestation_required: 422,
  release_version_mismatch: 422,
  release_signature_invalid: 422,
  invalid_logs: 422,
  // come back later
  rate_limited: 429,
  cloud_busy: 503,
  store_unavailable: 503,
  // the cloud's own failures
  internal_error: 500,
  diagnostics_failed: 504,
  terminal_unreachable: 504,
};

/** The store did not answer (cloud/store/store-errors.ts): come back in a second. */
export const STORE_UNAVAILABLE = new Refusal(
  'store_unavailable',
  'the store (the database) is not answering; nothing was changed; try again shortly',
  { retryAfterSec: 1 },
);

/** The status of a refusal; a code missing from the table is the cloud's bug (500). */
export function statusOf(r: Refusal): number {
  const kind = typeof r.details.kind === 'string' ? r.details.kind : undefined;
  return (kind !== undefined ? STATUS_OF[`${r.code}/${kind}`] : undefined) ?? STATUS_OF[r.code] ?? 500;
}

/** HTTP headers a refusal carries: `Retry-After` (details.retryAfterSec), `Content-Range` (details.contentRange). */
export function headersOf(r: Refusal): Record<string, string> {
  const h: Record<string, string> = {};
  if (typeof r.details.retryAfterSec === 'number') h['retry-after'] = String(r.details.retryAfterSec);
  if (typeof r.details.contentRange === 'string') h['content-range'] = r.details.contentRange;
  return h;
}

/** The answer to a refusal: status, headers, and the one error body (details stay in the cloud). */
export function refusalAnswer(r: Refusal): {
  status: number;
  headers: Record<string, string>;
  body: ErrorBody;
} {
  return { status: statusOf(r), headers: headersOf(r), body: errorBody(r.code, r.message) };
}
