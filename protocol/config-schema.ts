import { FormatRegistry, type Static, type TSchema, Type } from '@sinclair/typebox';
import { RpcErrorCode } from './rpc-errors.js';
import { compileValidator, type SchemaIssue, type Validator } from './schema-validation.js';

/**
 * The terminal configuration (VINR: tip, receipt, display, offlineMode) plus the agent's fleet
 * settings. One schema for the cloud (REST input, layering) and the agent (apply), so both
 * judge a config the same way. Pure.
 */
let iso4217: Set<string> | undefined;
/** An ISO 4217 currency code the runtime knows (`Intl.supportedValuesOf('currency')`: 162 on Node 20). */
export function isIsoCurrency(code: string): boolean {
  iso4217 ??= new Set(Intl.supportedValuesOf('currency'));
  return iso4217.has(code);
}
FormatRegistry.Set('iso4217', isIsoCurrency);

export const Currency = Type.String({
  pattern: '^[A-Z]{3}$',
  format: 'iso4217',
  description: "ISO 4217 code, one of Intl.supportedValuesOf('currency')",
});

/** The largest amount, in minor units, a transaction or an offline limit may name (1,000,000.00). */
export const MAX_AMOUNT = 100_000_000;

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
    maxAmount: Type.Integer({ minimum: 0, maximum: MAX_AMOUNT }),
    /** Transactions held while offline. */
    maxQueue: Type.Integer({ minimum: 0, maximum: 100_000 }),
    /** Sum of offline transactions per currency, minor units. */
    maxTotal: Type.Record(Currency, Type.Integer({ minimum: 0, maximum: MAX_AMOUNT * 100_000 }), {
      additionalProperties: false,
    }),
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

/** A time zone the runtime knows (IANA, e.g. Europe/Amsterdam). */
export function isTimeZone(tz: string): boolean {
  if (tz.length === 0 || tz.length > 64) return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}
FormatRegistry.Set('iana-timezone', isTimeZone);

export const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
const ClockTime = Type.String({
  pattern: '^([01]\\d|2[0-3]):[0-5]\\d$',
  description: 'HH:MM, 24-hour, local time',
});

/**
 * When reboots and updates may run (issue 24): on `days`, from `from` to `to` in `timezone` (the
 * store's, filled in by the cloud; the device's own zone when none). A window that ends before it
 * starts runs past midnight into the next day (`days` names the day it opens); `from` = `to` is
 * the whole day. Absent: no window, actions run when they arrive. The operator's `now` skips it; a
 * busy lease still holds an action inside it.
 */
export const MaintenanceConfig = Type.Object(
  {
    days: Type.Array(Type.Union(WEEKDAYS.map((d) => Type.Literal(d))), {
      minItems: 1,
      maxItems: 7,
      uniqueItems: true,
    }),
    from: ClockTime,
    to: ClockTime,
    timezone: Type.Optional(
      Type.String({ format: 'iana-timezone', maxLength: 64, description: 'IANA time zone' }),
    ),
  },
  { additionalProperties: false },
);
export type MaintenanceConfig = Static<typeof MaintenanceConfig>;

export const TerminalConfig = Type.Object(
  {
    tip: TipConfig,
    receipt: ReceiptConfig,
    display: DisplayConfig,
    offlineMode: OfflineModeConfig,
    agent: AgentConfig,
    /** Only when a layer sets it (older agents refuse a section they do not know). */
    maintenance: Type.Optional(MaintenanceConfig),
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
    maintenance: partialSection(MaintenanceConfig),
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

/**
 * A record's keys are checked by its pattern only; the currencies of `offlineMode.maxTotal` must
 * also be ISO 4217 codes. The same check on both sides, like the rest of the schema.
 */
function withCurrencyKeys<T extends TSchema>(v: Validator<T>): Validator<T> {
  return {
    schema: v.schema,
    check(value) {
      const r = v.check(value);
      if (!r.ok) return r;
      const totals = (r.value as { offlineMode?: { maxTotal?: Record<string, number> } }).offlineMode
        ?.maxTotal;
      const issues: SchemaIssue[] = Object.keys(totals ?? {})
        .filter((c) => !isIsoCurrency(c))
        .map((c) => ({
          path: `/offlineMode/maxTotal/${c}`,
          message: `${c} is not an ISO 4217 currency code`,
          code: RpcErrorCode.PropertyConstraintViolation,
        }));
      return issues.length === 0 ? r : { ok: false, issues };
    },
  };
}

export const configValidator = withCurrencyKeys(compileValidator(TerminalConfig));
export const layerValidator = withCurrencyKeys(compileValidator(ConfigLayer));

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function isObject(v: unknown): v is Record<string, Json> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * RFC 7386 JSON merge patch: objects merge key by key, `null` removes a key, anything else
 * (arrays included) replaces. Used to layer configs and to apply a terminal's override patch.
 */
export function mergePatch(target: unknown, patch: unknown, depth = 0): unknown {
  if (!isObject(patch)) return patch;
  // A config is a few levels deep; a patch nested deeper is not a config (and must not be able
  // to exhaust the stack of whoever merges it).
  if (depth >= MAX_PATCH_DEPTH)
    throw new RangeError(`a merge patch may nest at most ${MAX_PATCH_DEPTH} objects deep`);
  const out: Record<string, unknown> = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v, depth + 1);
  }
  return out;
}

export const MAX_PATCH_DEPTH = 32;

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
