import { describe, expect, it } from 'vitest';
import { errorBody, parseErrorBody, Refusal } from '../../protocol/refusal.js';

describe('the one error model', () => {
  it('a refusal carries a code, a message and details', () => {
    const r = new Refusal('storage_full', 'the store is full', { maxStoreMb: 5 });
    expect(r).toBeInstanceOf(Error);
    expect([r.code, r.message, r.details]).toEqual(['storage_full', 'the store is full', { maxStoreMb: 5 }]);
  });

  it('the error body round-trips through text and parsed JSON; details only when there are some', () => {
    expect(errorBody('x_y', 'm')).toEqual({ error: { code: 'x_y', message: 'm' } });
    const body = errorBody('invalid_config', 'bad', { path: '/tip' });
    expect(parseErrorBody(JSON.stringify(body))).toEqual(body.error);
    expect(parseErrorBody(Buffer.from(JSON.stringify(body)))).toEqual(body.error);
    expect(parseErrorBody(body)).toEqual(body.error);
  });

  it('anything else is not an error body, and parsing never throws', () => {
    for (const v of [
      '<html>',
      '',
      '{',
      'null',
      '{"error":"x"}',
      '{"error":{"code":"Bad Code","message":"m"}}',
      42,
      null,
      undefined,
      [],
    ])
      expect(parseErrorBody(v)).toBeUndefined();
  });
});
