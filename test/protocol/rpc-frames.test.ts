import { describe, expect, it } from 'vitest';
import { encodeCall, encodeError, encodeResult, parseFrame } from '../../protocol/rpc-frames.js';

describe('parseFrame', () => {
  it('round-trips the three frame kinds', () => {
    expect(parseFrame(encodeCall('1', 'Hello', { a: 1 }))).toEqual({
      ok: true,
      frame: { type: 2, id: '1', action: 'Hello', payload: { a: 1 } },
    });
    expect(parseFrame(encodeResult('1', { b: 2 }))).toEqual({
      ok: true,
      frame: { type: 3, id: '1', payload: { b: 2 } },
    });
    expect(parseFrame(encodeError('1', 'GenericError', 'no', { c: 3 }))).toEqual({
      ok: true,
      frame: { type: 4, id: '1', code: 'GenericError', description: 'no', details: { c: 3 } },
    });
  });

  it.each([
    ['garbage', '-1', 'RpcFrameworkError'],
    ['{}', '-1', 'RpcFrameworkError'],
    ['[2, 5, "Hello", {}]', '-1', 'RpcFrameworkError'],
    ['[2, "", "Hello", {}]', '-1', 'RpcFrameworkError'],
    [`[2, "${'i'.repeat(37)}", "Hello", {}]`, '-1', 'RpcFrameworkError'],
    ['[7, "id", {}]', 'id', 'MessageTypeNotSupported'],
    ['[2, "id", "Hello", []]', 'id', 'FormatViolation'],
    ['[2, "id", "", {}]', 'id', 'FormatViolation'],
    ['[3, "id", "x"]', 'id', 'FormatViolation'],
    ['[4, "id", "Code", "d"]', 'id', 'FormatViolation'],
  ])('refuses %s with id %s and %s', (text, id, code) => {
    const r = parseFrame(text);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.id).toBe(id);
      expect(r.error.code).toBe(code);
      expect(r.error.message.length).toBeGreaterThan(5);
    }
  });

  it('accepts an id of exactly 36 characters', () => {
    expect(parseFrame(`[3, "${'i'.repeat(36)}", {}]`).ok).toBe(true);
  });
});
