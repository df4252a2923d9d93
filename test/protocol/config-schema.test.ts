import { describe, expect, it } from 'vitest';
import {
  configValidator,
  DEFAULT_CONFIG,
  effectiveConfig,
  layerValidator,
  mergePatch,
} from '../../protocol/config-schema.js';
import { BROKEN_LIMITS } from '../support/config-fixtures.js';

const valid = {
  tip: { mode: 'percentage', suggestions: [10, 15, 20] },
  receipt: { channels: ['print', 'sms'], requireConsent: true },
  display: { idleMessage: 'Welcome to Acme Coffee' },
  offlineMode: { enabled: true, maxAmount: 5000, maxQueue: 50, maxTotal: { EUR: 100_000 }, maxAgeHours: 24 },
  agent: { heartbeatIntervalSec: 30, pingIntervalSec: 15, renewalCheckHours: 12, logLevel: 'info' },
};

describe('config schema', () => {
  it('accepts the VINR example with agent settings', () => {
    expect(configValidator.check(valid).ok).toBe(true);
    expect(configValidator.check(DEFAULT_CONFIG).ok).toBe(true);
  });

  it.each(BROKEN_LIMITS)('refuses %s', (_name, layer, path) => {
    const merged = mergePatch(valid, layer);
    const full = configValidator.check(merged);
    expect(full.ok).toBe(false);
    if (!full.ok) expect(full.issues.map((i) => i.path).some((p) => p.startsWith(path))).toBe(true);
    const asLayer = layerValidator.check(layer);
    expect(asLayer.ok).toBe(false);
  });

  it('issue 18.3: validation errors name the allowed values, fields and forms', () => {
    const r = configValidator.check(
      mergePatch(valid, {
        tip: { mode: 'tips' },
        receipt: { channels: ['fax'] },
        offlineMode: { maxTotal: { eur: 1 } },
        agent: { logLevel: 'loud', colour: 'red' },
      }),
    );
    expect(r.ok).toBe(false);
    const messages = Object.fromEntries((r.ok ? [] : r.issues).map((i) => [i.path, i.message]));
    expect(messages).toMatchObject({
      '/tip/mode': 'must be one of "percentage", "fixed" (got "tips")',
      '/receipt/channels/0': 'must be one of "print", "email", "sms" (got "fax")',
      '/offlineMode/maxTotal/eur': '"eur" is not allowed here: keys must match ^[A-Z]{3}$',
      '/agent/logLevel': 'must be one of "trace", "debug", "info", "warn", "error" (got "loud")',
      '/agent/colour':
        '"colour" is not a known field; allowed: heartbeatIntervalSec, pingIntervalSec, renewalCheckHours, logLevel',
    });
  });

  it('refuses a partial config as a whole', () => {
    const { display: _display, ...partial } = valid;
    const r = configValidator.check(partial);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.issues[0]!.path).toBe('/display');
  });
});

describe('layering', () => {
  it('merge patch: objects merge, null removes, arrays replace', () => {
    expect(mergePatch({ a: { b: 1, c: 2 }, d: [1, 2] }, { a: { b: null, e: 3 }, d: [9] })).toEqual({
      a: { c: 2, e: 3 },
      d: [9],
    });
    expect(mergePatch({ a: 1 }, 'x')).toBe('x');
  });

  it('defaults ← template ← overrides, and removing an override shows the template again', () => {
    const template = { tip: { suggestions: [10, 15, 20] }, display: { idleMessage: 'Welcome' } };
    const overrides = { display: { idleMessage: 'Till 3' } };
    const eff = effectiveConfig(template, overrides) as typeof valid;
    expect(eff.display.idleMessage).toBe('Till 3');
    expect(eff.tip).toEqual({ mode: 'percentage', suggestions: [10, 15, 20] });
    expect(eff.receipt).toEqual(DEFAULT_CONFIG.receipt);
    const removed = mergePatch(overrides, { display: null });
    expect((effectiveConfig(template, removed as never) as typeof valid).display.idleMessage).toBe('Welcome');
    expect(configValidator.check(eff).ok).toBe(true);
  });
});
