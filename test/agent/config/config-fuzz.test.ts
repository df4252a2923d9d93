import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { AgentStore } from '../../../agent/agent-store.js';
import { ConfigManager } from '../../../agent/config/config-manager.js';
import { EventBus } from '../../../agent/events/event-bus.js';
import { configValidator, DEFAULT_CONFIG, mergePatch } from '../../../protocol/config-schema.js';

/**
 * Issue 11: random configs pushed at the agent's config manager (real SQLite file). Every one
 * the schema refuses is rejected with its paths and changes nothing; every valid one is applied;
 * the applied config is always a valid one — the last good one.
 */
describe('random configs', () => {
  const store = new AgentStore(join(mkdtempSync(join(tmpdir(), 'posagent-cfgfuzz-')), 'agent.db'));
  afterAll(() => store.close());
  const mgr = new ConfigManager({
    store,
    events: new EventBus(),
    now: () => Date.parse('2026-11-23T10:00:00Z'),
    onApplied: () => {},
    onAck: () => {},
    log: { info: () => {}, warn: () => {} },
  });

  it('5,000 pushes: invalid ones rejected with paths and nothing changed, valid ones applied', () => {
    const json = fc.jsonValue({ maxDepth: 3 });
    // Patches on the valid default: sometimes right, mostly wrong types, ranges, unknown keys.
    const patch = fc.record(
      {
        tip: fc.oneof(
          json,
          fc.record({
            mode: fc.constantFrom('percentage', 'fixed', 'bogus'),
            suggestions: fc.array(fc.integer({ min: -5, max: 200 }), { maxLength: 6 }),
          }),
        ),
        receipt: fc.oneof(
          json,
          fc.record({
            channels: fc.array(fc.constantFrom('print', 'email', 'sms', 'fax'), { maxLength: 4 }),
          }),
        ),
        display: fc.oneof(json, fc.record({ idleMessage: fc.string({ maxLength: 80 }) })),
        offlineMode: fc.oneof(
          json,
          fc.record({ enabled: fc.boolean(), maxAmount: fc.integer({ min: -10, max: 1_000_000 }) }),
        ),
        agent: fc.oneof(json, fc.record({ heartbeatIntervalSec: fc.integer({ min: -1, max: 100_000 }) })),
        extra: json,
      },
      { requiredKeys: [] },
    );
    let version = 0;
    let applied = 0;
    let rejected = 0;
    fc.assert(
      fc.property(fc.oneof(patch, json), (p) => {
        const config = mergePatch(DEFAULT_CONFIG, p);
        const before = mgr.current();
        const valid = configValidator.check(config).ok;
        version++;
        if (typeof config !== 'object' || config === null || Array.isArray(config)) {
          // Not even an object: the frame schema refuses it before the config manager sees it.
          return;
        }
        mgr.handleApply({ version, config: config as Record<string, unknown> });
        const after = mgr.current();
        if (valid) {
          applied++;
          expect(after.version).toBe(version);
          expect(after.config).toEqual(config);
        } else {
          rejected++;
          expect(after).toEqual(before);
          const r = mgr.lastRejection();
          expect(r?.version).toBe(version);
          expect(r!.errors.length).toBeGreaterThan(0);
          for (const e of r!.errors) expect(typeof e.path).toBe('string');
        }
        expect(configValidator.check(after.config).ok).toBe(true);
      }),
      { numRuns: 5000 },
    );
    process.stdout.write(`random configs: ${applied} applied, ${rejected} rejected, last good always kept\n`);
    expect(applied).toBeGreaterThan(0);
    expect(rejected).toBeGreaterThan(1000);
  }, 120_000);
});
