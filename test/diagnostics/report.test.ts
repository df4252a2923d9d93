import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolvePaths } from '../../agent/settings.js';
import { diagnose, formatReport } from '../../diagnostics/report.js';
import { DiagnosticsReportSchema } from '../../protocol/messages.js';
import { compileValidator } from '../../protocol/schema-validation.js';
import { tempDir } from '../support/processes.js';

const AT = Date.parse('2026-11-23T10:00:00Z');

/** The report in-process on a real, empty state dir: a fresh device that was never enrolled. */
describe('diagnostics report', () => {
  it('a device never enrolled: enrolled and daemon fail, with hints; the summary counts the checks', async () => {
    const dir = tempDir('diagnostics');
    const paths = resolvePaths({ stateDir: dir, runtimeDir: join(dir, 'run') }, {});
    const r = await diagnose({
      paths,
      settings: { cloudUrl: '', renewBeforeDays: 30 },
      daemon: null,
      now: () => AT,
    });
    expect(compileValidator(DiagnosticsReportSchema).check(r).ok).toBe(true);
    const byId = Object.fromEntries(r.checks.map((c) => [c.id, c]));
    expect(byId.enrolled).toMatchObject({
      group: 'identity',
      status: 'fail',
      detail: 'this terminal is not enrolled',
    });
    expect(byId.daemon).toMatchObject({ group: 'agent', status: 'fail' });
    expect(byId.enrolled?.hint).toMatch(/posagent enroll --code/);
    expect(byId.local_api?.status).toBe('warn');
    // no cloud configured: no network check runs
    expect(r.checks.filter((c) => c.group === 'network')).toEqual([]);
    const count = (s: string) => r.checks.filter((c) => c.status === s).length;
    expect(r.summary).toEqual({ pass: count('pass'), warn: count('warn'), fail: count('fail') });
    expect(r.generatedAt).toBe('2026-11-23T10:00:00.000Z');
  });

  it('formats for a screen: grouped, hints only where something is wrong, no colour unless asked', async () => {
    const dir = tempDir('diagnostics');
    const paths = resolvePaths({ stateDir: dir, runtimeDir: join(dir, 'run') }, {});
    const r = await diagnose({
      paths,
      settings: { cloudUrl: '', renewBeforeDays: 30 },
      daemon: null,
      now: () => AT,
    });
    const text = formatReport(r, false);
    expect(text.split('\n')[0]).toBe('Identity');
    expect(text).toContain('  FAIL  enrolled        this terminal is not enrolled');
    expect(text).not.toContain('\u001b[');
    expect(text.trimEnd().split('\n').at(-1)).toBe(
      `${r.summary.pass} passed, ${r.summary.warn} warnings, ${r.summary.fail} failed (2026-11-23T10:00:00.000Z)`,
    );
    expect(formatReport(r, true)).toContain('\u001b[31mFAIL\u001b[0m');
  });
});
