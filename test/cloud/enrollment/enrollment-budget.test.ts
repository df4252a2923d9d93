import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EnrollmentBudget } from '../../../cloud/enrollment/enrollment-budget.js';
import { openSqliteStore } from '../../../cloud/store/sqlite/sqlite-store.js';
import { tempDir } from '../../support/processes.js';

/** The enrollment budgets over the cloud's real store (a SQLite file), the clock passed in. */
describe('enrollment budget', () => {
  const open = () => openSqliteStore(join(tempDir('budget'), 'cloud.db'));

  it('per source: max failures in the window, then refused with the wait, then forgotten', async () => {
    const store = open();
    const b = new EnrollmentBudget(store.enrollmentLimits, { perSource: 3, global: 100, windowMs: 1000 });
    for (const t of [0, 10, 20]) {
      expect(await b.check('code', 'a', t)).toEqual({ ok: true });
      await b.fail('code', 'a', t);
    }
    expect(await b.check('code', 'a', 30)).toEqual({ ok: false, scope: 'source', retryAfterMs: 1000 });
    expect(await b.check('code', 'a', 500)).toEqual({ ok: false, scope: 'source', retryAfterMs: 1000 }); // at least 1 s
    expect(await b.check('code', 'b', 30)).toEqual({ ok: true });
    expect(await b.check('code', 'a', 1001)).toEqual({ ok: true }); // the first failure left the window
    await store.close();
  });

  it('global: failures from many sources add up; the wait is until the oldest that counts leaves', async () => {
    const store = open();
    const b = new EnrollmentBudget(store.enrollmentLimits, { perSource: 10, global: 5, windowMs: 60_000 });
    for (let i = 0; i < 5; i++) await b.fail('code', `10.0.0.${i}`, i * 1000);
    expect(await b.check('code', '10.0.0.99', 5000)).toEqual({
      ok: false,
      scope: 'global',
      retryAfterMs: 55_000,
    });
    expect(await b.check('code', '10.0.0.99', 60_001)).toEqual({ ok: true });
    await store.close();
  });

  it('a method that did not fail is never refused', async () => {
    const store = open();
    const b = new EnrollmentBudget(store.enrollmentLimits, { perSource: 2, global: 3, windowMs: 60_000 });
    for (let i = 0; i < 3; i++) await b.fail('auto', 'store-nat', i);
    expect(await b.check('auto', 'store-nat', 10)).toMatchObject({ ok: false, scope: 'global' });
    expect(await b.check('code', 'store-nat', 10)).toEqual({ ok: true });
    expect(await b.check('pair', 'store-nat', 10)).toEqual({ ok: true });
    await store.close();
  });

  it('survives reopening the store (a cloud restart); pruning forgets only what left the window', async () => {
    const dir = tempDir('budget');
    let store = openSqliteStore(join(dir, 'cloud.db'));
    const limits = { perSource: 2, global: 100, windowMs: 1000 };
    let b = new EnrollmentBudget(store.enrollmentLimits, limits);
    await b.fail('code', 'a', 100);
    await b.fail('code', 'a', 900);
    await store.close();
    store = openSqliteStore(join(dir, 'cloud.db'));
    b = new EnrollmentBudget(store.enrollmentLimits, limits);
    expect(await b.check('code', 'a', 950)).toMatchObject({ ok: false, scope: 'source' });
    expect(await store.enrollmentLimits.prune(950 - 1000 + 200, 0, 0)).toEqual({
      failures: 1,
      pairings: 0,
      codes: 0,
    });
    expect(await b.check('code', 'a', 950)).toEqual({ ok: true });
    await store.close();
  });
});
