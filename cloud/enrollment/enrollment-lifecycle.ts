/**
 * The lifecycles of what a device enrolls with, in plain sight.
 *
 * An enrollment code (typed, scanned, a replacement or a reprovision code):
 *
 *   unused ──use──▶ used            (the terminal exists, or has its new certificate)
 *      ├──revoke──▶ revoked         (support withdrew it: DELETE /v1/enrollment-codes/{code})
 *      └──time──▶ expired           (kept `expiredCodeRetentionSec` to say so, then deleted)
 *
 * A pairing (the device shows an activation code; someone activates it):
 *
 *   pending ──activate──▶ activated (the device collects its certificate by polling)
 *      └──time──▶ expired           (answers 410 one more lifetime, then deleted)
 *
 * `used`, `revoked`, `activated` and `expired` are final: nothing moves them on.
 */
export type CodeState = 'unused' | 'used' | 'revoked' | 'expired';
export type PairingState = 'pending' | 'activated' | 'expired';

export const CODE_MOVES: Readonly<
  Record<CodeState, Partial<Record<'use' | 'revoke' | 'expire', CodeState>>>
> = {
  unused: { use: 'used', revoke: 'revoked', expire: 'expired' },
  used: {},
  revoked: {},
  expired: {},
};

export const PAIRING_MOVES: Readonly<
  Record<PairingState, Partial<Record<'activate' | 'expire', PairingState>>>
> = {
  pending: { activate: 'activated', expire: 'expired' },
  activated: {},
  expired: {},
};

/** Where a code is at `now`: used wins over revoked, revoked over expired (each says when). */
export function codeState(
  row: { usedAt: number | null; expiresAt: number; revokedAt?: number | null },
  now: number,
): CodeState {
  if (row.usedAt !== null) return 'used';
  if (row.revokedAt !== null && row.revokedAt !== undefined) return 'revoked';
  return row.expiresAt <= now ? 'expired' : 'unused';
}

/** Where a pairing is at `now`: activated wins over expired (the device may still collect). */
export function pairingState(
  row: { activatedAt: number | null; expiresAt: number },
  now: number,
): PairingState {
  if (row.activatedAt !== null) return 'activated';
  return row.expiresAt <= now ? 'expired' : 'pending';
}
