import { RpcError, RpcErrorCode } from './rpc-errors.js';

/** RPC frame types, OCPP-J shape. */
export const MessageType = { Call: 2, CallResult: 3, CallError: 4 } as const;

export const MAX_ID_LENGTH = 36;
/** Id used in an error answer to a frame whose own id could not be read. */
export const UNKNOWN_ID = '-1';

export type CallFrame = { type: 2; id: string; action: string; payload: unknown };
export type CallResultFrame = { type: 3; id: string; payload: unknown };
export type CallErrorFrame = {
  type: 4;
  id: string;
  code: string;
  description: string;
  details: Record<string, unknown>;
};
export type Frame = CallFrame | CallResultFrame | CallErrorFrame;

export type ParsedFrame = { ok: true; frame: Frame } | { ok: false; id: string; error: RpcError };

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function validId(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0 && v.length <= MAX_ID_LENGTH;
}

/** Parses one text frame. Never throws: a bad frame comes back as the error to answer with. */
export function parseFrame(text: string): ParsedFrame {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return bad(UNKNOWN_ID, RpcErrorCode.RpcFrameworkError, 'frame is not valid JSON');
  }
  if (!Array.isArray(raw) || raw.length < 3) {
    return bad(UNKNOWN_ID, RpcErrorCode.RpcFrameworkError, 'frame must be a JSON array [type, id, ...]');
  }
  const [type, id] = raw;
  if (!validId(id)) {
    return bad(
      UNKNOWN_ID,
      RpcErrorCode.RpcFrameworkError,
      `frame id must be a string of 1-${MAX_ID_LENGTH} chars`,
    );
  }
  switch (type) {
    case MessageType.Call: {
      if (raw.length !== 4 || typeof raw[2] !== 'string' || raw[2].length === 0) {
        return bad(id, RpcErrorCode.FormatViolation, 'call frame must be [2, id, "Action", payload]');
      }
      if (!isPlainObject(raw[3]))
        return bad(id, RpcErrorCode.FormatViolation, 'call payload must be an object');
      return { ok: true, frame: { type: 2, id, action: raw[2], payload: raw[3] } };
    }
    case MessageType.CallResult: {
      if (raw.length !== 3 || !isPlainObject(raw[2])) {
        return bad(id, RpcErrorCode.FormatViolation, 'result frame must be [3, id, payload]');
      }
      return { ok: true, frame: { type: 3, id, payload: raw[2] } };
    }
    case MessageType.CallError: {
      const [, , code, description, details] = raw;
      if (
        raw.length !== 5 ||
        typeof code !== 'string' ||
        typeof description !== 'string' ||
        !isPlainObject(details)
      ) {
        return bad(
          id,
          RpcErrorCode.FormatViolation,
          'error frame must be [4, id, "Code", "description", {details}]',
        );
      }
      return { ok: true, frame: { type: 4, id, code, description, details } };
    }
    default:
      return bad(
        id,
        RpcErrorCode.MessageTypeNotSupported,
        `message type ${JSON.stringify(type)} is not supported`,
      );
  }
}

function bad(id: string, code: RpcErrorCode, message: string): ParsedFrame {
  return { ok: false, id, error: new RpcError(code, message) };
}

export function encodeCall(id: string, action: string, payload: unknown): string {
  return JSON.stringify([MessageType.Call, id, action, payload]);
}
export function encodeResult(id: string, payload: unknown): string {
  return JSON.stringify([MessageType.CallResult, id, payload]);
}
export function encodeError(
  id: string,
  code: string,
  description: string,
  details: Record<string, unknown> = {},
): string {
  return JSON.stringify([MessageType.CallError, id, code, description, details]);
}
