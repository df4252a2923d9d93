/**
 * The lifecycles of what a device enrolls with, in plain sight.
 *
 * An enrollment code (typed, scanned, or a replacement code):
 *
 *   unused ──use──▶ used            (the terminal exists)
 *      └──time──▶ expired           (kept `expiredCodeRetentionSec` to say so, then deleted)
 *
 * A pairing (the device shows an activation code; someone activates it):
 *
 *   pending ──activate──▶ activated (the device collects its certificate by polling)
 *      └──time──▶ expired           (answers 410 one more lifetime, then deleted)
 *
 * `used`, `activated` and `expired` are final: nothing moves them on.
 */
export type CodeState = 'unused' | 'used' | 'expired';
export type PairingState = 'pending' | 'activated' | 'expired';

export const CODE_MOVES: Readonly<Record<CodeState, Partial<Record<'use' | 'expire', CodeState>>>> = {
  unused: { use: 'used', expire: 'expired' },
  used: {},
  expired: {},
};

export const PAIRING_MOVES: Readonly<
  Record<PairingState, Partial<Record<'activate' | 'expire', PairingState>>>
> = {
  pending: { activate: 'activated', expire: 'expired' },
  activated: {},
  expired: {},
};

/** Where a code is at `now`: used wins over expired (a used code says when it was used). */
export function codeState(row: { usedAt: number | null; expiresAt: number }, now: number): CodeState {
  if (row.usedAt !== null) return 'used';
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
