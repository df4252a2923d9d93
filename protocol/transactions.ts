import { type Static, Type } from '@sinclair/typebox';
import { SealedCard } from './card-envelope.js';
import { Currency, MAX_AMOUNT } from './config-schema.js';
import { IsoTime } from './formats.js';

/** `POST /v1/transactions` on the local API: what the POS app hands over. */
export const CardInput = Type.Object(
  {
    pan: Type.String({ pattern: '^[0-9]{12,19}$' }),
    expiry: Type.Optional(Type.String({ pattern: '^(0[1-9]|1[0-2])/[0-9]{2}$' })),
    holder: Type.Optional(Type.String({ maxLength: 64 })),
  },
  { additionalProperties: false },
);
export const TransactionInput = Type.Object(
  {
    id: Type.String({
      pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$',
      description: "the POS app's idempotency key (UUID)",
    }),
    amount: Type.Integer({ minimum: 1, maximum: MAX_AMOUNT, description: 'minor units' }),
    currency: Currency,
    createdAt: Type.Optional(IsoTime),
    card: Type.Optional(CardInput),
  },
  { additionalProperties: false },
);
export type TransactionInput = Static<typeof TransactionInput>;

/** Transaction states, in the order a transaction normally goes through them. */
export const TRANSACTION_STATES = [
  'stored',
  'sending',
  'received',
  'authorised',
  'declined',
  'failed',
  'expired',
] as const;
export type TransactionState = (typeof TRANSACTION_STATES)[number];

/** One transaction as forwarded to the cloud; card data only ever sealed. */
export const ForwardedTransaction = Type.Object(
  {
    id: Type.String({ minLength: 1, maxLength: 64 }),
    seq: Type.Integer({ minimum: 1 }),
    amount: Type.Integer({ minimum: 1, maximum: MAX_AMOUNT, description: 'minor units' }),
    currency: Currency,
    createdAt: IsoTime,
    /**
     * When the terminal took it into its queue (its own clock); `offlineMode.maxAgeHours` counts
     * from here, not from `createdAt` (the POS app's clock). Optional for agents before 0.2.
     */
    storedAt: Type.Optional(IsoTime),
    offline: Type.Boolean(),
    expired: Type.Boolean(),
    card: Type.Union([SealedCard, Type.Null()]),
  },
  { additionalProperties: false },
);
export type ForwardedTransaction = Static<typeof ForwardedTransaction>;

/** Items per TransactionsForward (and TransactionResult): ~400 KB with sealed cards, under the 1 MB frame cap. */
export const MAX_FORWARD_BATCH = 500;
