import { type Static, type TSchema, Type } from '@sinclair/typebox';
import { compileValidator } from './schema-validation.js';

/**
 * The terminal configuration (VINR: tip, receipt, display, offlineMode) plus the agent's fleet
 * settings. One schema for the cloud (REST input, layering) and the agent (apply), so both
 * judge a config the same way. Pure.
 */
export const Currency = Type.String({ pattern: '^[A-Z]{3}$', description: 'ISO 4217 code' });

export const TipConfig = Type.Object(
  {
    mode: Type.Union([Type.Literal('percentage'), Type.Literal('fixed')]),
    suggestions: Type.Array(Type.Integer({ minimum: 0, maximum: 1_000_000 }), { maxItems: 4 }),
  },
  { additionalProperties: false },
);
export const ReceiptConfig = Type.Object(
  {
    channels: Type.Array(Type.Union([Type.Literal('print'), Type.Literal('email'), Type.Literal('sms')]), {
      uniqueItems: true,
      maxItems: 3,
    }),
    requireConsent: Type.Boolean(),
  },
  { additionalProperties: false },
);
export const DisplayConfig = Type.Object(
  { idleMessage: Type.String({ maxLength: 60 }) },
  { additionalProperties: false },
);
export const OfflineModeConfig = Type.Object(
  {
    enabled: Type.Boolean(),
    /** Per transaction, minor units. */
    maxAmount: Type.Integer({ minimum: 0 }),
    /** Transactions held while offline. */
    maxQueue: Type.Integer({ minimum: 0, maximum: 100_000 }),
    /** Sum of offline transactions per currency, minor units. */
    maxTotal: Type.Record(Currency, Type.Integer({ minimum: 0 }), { additionalProperties: false }),
    /** Offline transactions not received by the cloud within this expire (Square: 24 h, hard cap 72 h). */
    maxAgeHours: Type.Integer({ minimum: 1, maximum: 72 }),
  },
  { additionalProperties: false },
);
export const AgentConfig = Type.Object(
  {
    heartbeatIntervalSec: Type.Integer({ minimum: 1, maximum: 3600 }),
    pingIntervalSec: Type.Integer({ minimum: 1, maximum: 600 }),
    renewalCheckHours: Type.Integer({ minimum: 1, maximum: 168 }),
    logLevel: Type.Union(['trace', 'debug', 'info', 'warn', 'error'].map((l) => Type.Literal(l))),
  },
  { additionalProperties: false },
);

export const TerminalConfig = Type.Object(
  {
    tip: TipConfig,
    receipt: ReceiptConfig,
    display: DisplayConfig,
    offlineMode: OfflineModeConfig,
    agent: AgentConfig,
  },
  { additionalProperties: false },
);
export type TerminalConfig = Static<typeof TerminalConfig>;

function partialSection<T extends TSchema>(s: T) {
  return Type.Optional(Type.Partial(s, { additionalProperties: false }));
}

/** A layer: a location template or a terminal's overrides. Every field optional. */
export const ConfigLayer = Type.Object(
  {
    tip: partialSection(TipConfig),
    receipt: partialSection(ReceiptConfig),
    display: partialSection(DisplayConfig),
    offlineMode: partialSection(OfflineModeConfig),
    agent: partialSection(AgentConfig),
  },
  { additionalProperties: false },
);
export type ConfigLayer = Static<typeof ConfigLayer>;

export const DEFAULT_CONFIG: TerminalConfig = {
  tip: { mode: 'percentage', suggestions: [] },
  receipt: { channels: ['print'], requireConsent: false },
  display: { idleMessage: '' },
  offlineMode: { enabled: false, maxAmount: 0, maxQueue: 0, maxTotal: {}, maxAgeHours: 24 },
  agent: { heartbeatIntervalSec: 30, pingIntervalSec: 15, renewalCheckHours: 12, logLevel: 'info' },
};

export const configValidator = compileValidator(TerminalConfig);
export const layerValidator = compileValidator(ConfigLayer);

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function isObject(v: unknown): v is Record<string, Json> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * RFC 7386 JSON merge patch: objects merge key by key, `null` removes a key, anything else
 * (arrays included) replaces. Used to layer configs and to apply a terminal's override patch.
 */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return patch;
  const out: Record<string, unknown> = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/**
 * Effective config = defaults ← location template ← terminal overrides. The reference cloud passes
 * its own defaults (its heartbeat and ping flags folded into DEFAULT_CONFIG).
 */
export function effectiveConfig(
  template: unknown,
  overrides: unknown,
  defaults: TerminalConfig = DEFAULT_CONFIG,
): unknown {
  return mergePatch(mergePatch(defaults, template ?? {}), overrides ?? {});
}
