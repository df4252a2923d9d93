/**
 * RPC error codes carried in CALLERROR frames (the OCPP-J 2.0.1 set).
 * A peer maps every failure to one of these; nothing is classified by message text.
 */
export const RpcErrorCode = {
  FormatViolation: 'FormatViolation',
  GenericError: 'GenericError',
  InternalError: 'InternalError',
  MessageTypeNotSupported: 'MessageTypeNotSupported',
  NotImplemented: 'NotImplemented',
  NotSupported: 'NotSupported',
  OccurrenceConstraintViolation: 'OccurrenceConstraintViolation',
  PropertyConstraintViolation: 'PropertyConstraintViolation',
  ProtocolError: 'ProtocolError',
  RpcFrameworkError: 'RpcFrameworkError',
  SecurityError: 'SecurityError',
  TypeConstraintViolation: 'TypeConstraintViolation',
  /** Local only: the call got no answer in time. Never sent on the wire. */
  Timeout: 'Timeout',
  /** Local only: the link closed before the answer came. Never sent on the wire. */
  Disconnected: 'Disconnected',
} as const;
export type RpcErrorCode = (typeof RpcErrorCode)[keyof typeof RpcErrorCode];

const WIRE_CODES = new Set<string>(
  Object.values(RpcErrorCode).filter((c) => c !== 'Timeout' && c !== 'Disconnected'),
);

export function isWireErrorCode(code: string): code is RpcErrorCode {
  return WIRE_CODES.has(code);
}

/** A typed RPC failure; `code` is stable and is what callers branch on. */
export class RpcError extends Error {
  override readonly name = 'RpcError';
  constructor(
    readonly code: RpcErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}
