import { describe, expect, it } from 'vitest';
import { describeWindow, inWindow, nextWindowStart } from '../../../agent/actions/maintenance-window.js';
import type { MaintenanceConfig } from '../../../protocol/config-schema.js';
import { configValidator, DEFAULT_CONFIG, layerValidator } from '../../../protocol/config-schema.js';

const t = (iso: string) => Date.parse(iso);
const night: MaintenanceConfig = {
  days: ['mon', 'tue', 'wed', 'thu', 'fri'],
  from: '02:00',
  to: '05:00',
  timezone: 'Europe/Amsterdam',
};

/** Issue 24: the maintenance window in the store's time zone. */
describe('the maintenance window', () => {
  it('inside and outside, in the store time zone (Amsterdam is UTC+1 in December)', () => {
    // Wednesday 2 December 2026.
    expect(inWindow(t('2026-12-02T00:59:00Z'), night)).toBe(false); // 01:59 local
    expect(inWindow(t('2026-12-02T01:00:00Z'), night)).toBe(true); // 02:00 local
    expect(inWindow(t('2026-12-02T03:59:59Z'), night)).toBe(true); // 04:59:59 local
    expect(inWindow(t('2026-12-02T04:00:00Z'), night)).toBe(false); // 05:00 local: closed
    expect(inWindow(t('2026-12-05T01:30:00Z'), night)).toBe(false); // Saturday
    expect(inWindow(t('2026-12-02T01:30:00Z'), { ...night, timezone: 'America/New_York' })).toBe(false);
  });

  it('the next opening: now when open, else the first open minute (Friday night → Monday 02:00)', () => {
    expect(nextWindowStart(t('2026-12-02T01:30:00Z'), night)).toBe(t('2026-12-02T01:30:00Z'));
    expect(nextWindowStart(t('2026-12-02T00:59:50Z'), night)).toBe(t('2026-12-02T01:00:00Z'));
    expect(nextWindowStart(t('2026-12-02T12:00:00Z'), night)).toBe(t('2026-12-03T01:00:00Z'));
    expect(nextWindowStart(t('2026-12-04T05:00:00Z'), night)).toBe(t('2026-12-07T01:00:00Z'));
  });

  it('a window past midnight belongs to the day it opens; from = to is the whole day', () => {
    const late: MaintenanceConfig = { days: ['sat'], from: '22:00', to: '03:00', timezone: 'UTC' };
    expect(inWindow(t('2026-12-05T22:30:00Z'), late)).toBe(true); // Saturday night
    expect(inWindow(t('2026-12-06T02:59:00Z'), late)).toBe(true); // Sunday early: Saturday's window
    expect(inWindow(t('2026-12-06T22:30:00Z'), late)).toBe(false); // Sunday night
    expect(nextWindowStart(t('2026-12-06T03:00:00Z'), late)).toBe(t('2026-12-12T22:00:00Z'));
    expect(
      inWindow(t('2026-12-06T12:00:00Z'), { days: ['sun'], from: '00:00', to: '00:00', timezone: 'UTC' }),
    ).toBe(true);
  });

  it('follows the shop clock across daylight saving (Amsterdam, 29 March 2026: 02:00 → 03:00)', () => {
    const early: MaintenanceConfig = {
      days: ['sun', 'mon'],
      from: '04:00',
      to: '05:00',
      timezone: 'Europe/Amsterdam',
    };
    // Saturday noon UTC: Sunday 04:00 CEST = 02:00 UTC (not 03:00 UTC as in winter).
    expect(nextWindowStart(t('2026-03-28T12:00:00Z'), early)).toBe(t('2026-03-29T02:00:00Z'));
  });

  it('the config schema: a window is validated on both sides, by field; absent is no window', () => {
    expect(configValidator.check({ ...DEFAULT_CONFIG, maintenance: night }).ok).toBe(true);
    expect(configValidator.check(DEFAULT_CONFIG).ok).toBe(true);
    const bad = layerValidator.check({
      maintenance: { days: ['funday'], from: '25:00', timezone: 'Mars/Olympus' },
    });
    expect(bad.ok).toBe(false);
    const paths = bad.ok ? [] : bad.issues.map((i) => i.path);
    expect(paths).toEqual(expect.arrayContaining(['/maintenance/from', '/maintenance/timezone']));
    expect(describeWindow(night)).toBe('mon,tue,wed,thu,fri 02:00–05:00 Europe/Amsterdam');
  });
});
