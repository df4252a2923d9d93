import { randomInt } from 'node:crypto';

/** Ids and codes the reference cloud hands out. */
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
/** No 0/O, 1/I/L: codes are typed on a terminal keypad by people reading a screen. */
const CODE_ALPHABET = 'ABCDEFGHJKMNPQRSTUVWXYZ23456789';

export function newId(prefix: string): string {
  let s = '';
  for (let i = 0; i < 14; i++) s += BASE62[randomInt(BASE62.length)];
  return `${prefix}_${s}`;
}

/** An 8-character code shown as ABCD-EFGH: enrollment codes and pairing activation codes. */
export function newEnrollmentCode(): string {
  let s = '';
  for (let i = 0; i < 8; i++) s += CODE_ALPHABET[randomInt(CODE_ALPHABET.length)];
  return `${s.slice(0, 4)}-${s.slice(4)}`;
}

/** Codes are accepted in any case, with or without the dash or spaces. */
export function normaliseEnrollmentCode(input: string): string {
  const s = input.toUpperCase().replace(/[\s-]/g, '');
  return s.length === 8 ? `${s.slice(0, 4)}-${s.slice(4)}` : s;
}
