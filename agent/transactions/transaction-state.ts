import type { TransactionState } from '../../protocol/transactions.js';

/**
 * A queued transaction's life. Never deleted before it is final and past retention; never sent
 * again once the cloud has it.
 *
 *   stored ──forward──▶ sending ──received──▶ received ──decided──▶ authorised | declined
 *     │                   │  └──resend (link dropped mid-batch)──▶ sending
 *     │                   └──invalid──▶ failed      (kept, visible, never retried blindly)
 *     └──────age > maxAgeHours──────▶ expired  (kept; still reported to the cloud, once)
 */
export type TransactionEvent = 'forward' | 'resend' | 'received' | 'invalid' | 'decided' | 'expire';

export const TRANSACTION_TRANSITIONS: Readonly<
  Record<TransactionState, Partial<Record<TransactionEvent, readonly TransactionState[]>>>
> = {
  stored: { forward: ['sending'], expire: ['expired'] },
  sending: { resend: ['sending'], received: ['received'], invalid: ['failed'], expire: ['expired'] },
  received: { decided: ['authorised', 'declined'] },
  authorised: {},
  declined: {},
  failed: {},
  expired: {},
};

export function canTransition(
  from: TransactionState,
  event: TransactionEvent,
  to: TransactionState,
): boolean {
  return TRANSACTION_TRANSITIONS[from][event]?.includes(to) ?? false;
}
