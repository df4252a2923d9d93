import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { Refusal } from '../../protocol/refusal.js';

/**
 * Operator passwords, hashed with scrypt (node:crypto) and a random salt per password, kept as
 * `scrypt$N$r$p$salt$key` so that the cost can rise later without invalidating stored hashes.
 * N = 2^15, r = 8, p = 1: about 32 MiB and a few tens of milliseconds per try, off the event loop
 * (libuv's thread pool).
 */
const N = 2 ** 15;
const R = 8;
const P = 1;
const KEY_BYTES = 32;
export const MIN_PASSWORD_LENGTH = 12;
/** scrypt reads the whole password: a megabyte-long one would be work before any check. */
export const MAX_PASSWORD_LENGTH = 256;

function derive(password: string, salt: Buffer, n: number, r: number, p: number): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(password, salt, KEY_BYTES, { N: n, r, p, maxmem: 256 * n * r }, (err, key) =>
      err ? reject(err) : resolve(key),
    ),
  );
}

/** Refuses a password too short or too long to be one (the same rule for `user add` and the portal). */
export function checkPasswordPolicy(password: string): void {
  if (password.length < MIN_PASSWORD_LENGTH)
    throw new Refusal(
      'weak_password',
      `a password needs at least ${MIN_PASSWORD_LENGTH} characters (it had ${password.length})`,
    );
  if (password.length > MAX_PASSWORD_LENGTH)
    throw new Refusal('weak_password', `a password has at most ${MAX_PASSWORD_LENGTH} characters`);
}

export async function hashPassword(password: string): Promise<string> {
  checkPasswordPolicy(password);
  const salt = randomBytes(16);
  const key = await derive(password, salt, N, R, P);
  return ['scrypt', N, R, P, salt.toString('base64url'), key.toString('base64url')].join('$');
}

/** A hash of nothing anyone knows: a sign-in with an unknown name costs what a known one does. */
let decoy: Promise<string> | undefined;
export function decoyHash(): Promise<string> {
  decoy ??= hashPassword(randomBytes(24).toString('base64url'));
  return decoy;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  if (password.length > MAX_PASSWORD_LENGTH) return false;
  const [scheme, n, r, p, salt, key] = stored.split('$');
  if (scheme !== 'scrypt' || !salt || !key) return false;
  const want = Buffer.from(key, 'base64url');
  const got = await derive(password, Buffer.from(salt, 'base64url'), Number(n), Number(r), Number(p));
  return got.length === want.length && timingSafeEqual(got, want);
}
