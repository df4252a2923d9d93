import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentStore } from '../../../agent/agent-store.js';
import { EventBus } from '../../../agent/events/event-bus.js';
import { localApiStatus } from '../../../agent/local-api/local-api-statuses.js';
import { maintainQueue } from '../../../agent/transactions/queue-maintenance.js';
import { TransactionQueue } from '../../../agent/transactions/transaction-queue.js';
import { toRecord } from '../../../agent/transactions/transaction-record.js';
import { openCard, type SealedCard } from '../../../protocol/card-envelope.js';
import { DEFAULT_CONFIG, type TerminalConfig } from '../../../protocol/config-schema.js';
import { Refusal } from '../../../protocol/refusal.js';

const dataKeys = generateKeyPairSync('rsa', {
  modulusLength: 2048,
  publicKeyEncoding: { type: 'spki', format: 'pem' },
  privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
});
const PAN = '4111111111111111';

interface Setup {
  online?: boolean;
  offline?: Partial<TerminalConfig['offlineMode']>;
  locked?: boolean;
  maxBytes?: number;
}

/** The real queue on a real SQLite file, with the clock and the link state in the test's hands. */
function setup(o: Setup = {}) {
  const file = join(mkdtempSync(join(tmpdir(), 'posagent-q-')), 'agent.db');
  const store = new AgentStore(file, o.maxBytes ? { maxBytes: o.maxBytes } : {});
  const clock = { now: Date.parse('2026-11-23T10:00:00Z') };
  const state = { online: o.online ?? true, locked: o.locked ?? false };
  const queue = new TransactionQueue({
    store: store.transactions,
    events: new EventBus(),
    now: () => clock.now,
    online: () => state.online,
    offlineMode: () => ({
      ...DEFAULT_CONFIG.offlineMode,
      enabled: true,
      maxAmount: 5000,
      maxQueue: 3,
      maxTotal: { EUR: 9000 },
      ...o.offline,
    }),
    locked: () => state.locked,
    dataPublicKey: () => dataKeys.publicKey,
    onStored: () => {},
  });
  const rows = () => store.transactions.list(null, 1000).length;
  return { store, queue, clock, state, rows, file };
}

const tx = (amount = 1000, extra: object = {}) => ({ id: randomUUID(), amount, currency: 'EUR', ...extra });

/** A refusal as the local API answers it: its code, its message and the status of the one table. */
function answered(err: unknown): { status: number | undefined; code: string; message: string } {
  if (!(err instanceof Refusal)) throw err;
  return { status: localApiStatus(err.code), code: err.code, message: err.message };
}

function refused(fn: () => unknown): { status: number | undefined; code: string; message: string } {
  try {
    fn();
  } catch (err) {
    return answered(err);
  }
  throw new Error('expected a refusal');
}

describe('transaction queue (real SQLite file)', () => {
  let store: AgentStore | undefined;
  afterEach(() => store?.close());

  it('stores with 201 and a seq; the same id and body again → 200 and one row; another body → 409', () => {
    const s = setup();
    store = s.store;
    const t = tx(1250);
    const first = s.queue.submit(t);
    expect(first.status).toBe(201);
    expect(first.record).toMatchObject({ id: t.id, state: 'stored', seq: 1, offline: false });
    expect(s.queue.submit(t).status).toBe(200);
    expect(s.rows()).toBe(1);
    const conflict = refused(() => s.queue.submit({ ...t, amount: 1251 }));
    expect(conflict).toMatchObject({ status: 409, code: 'idempotency_conflict' });
    expect(conflict.message).toContain(t.id);
    expect(s.rows()).toBe(1);
  });

  it.each([
    ['a missing id', { amount: 1, currency: 'EUR' }, '/id'],
    ['an id that is not a UUID', { id: 'order-7', amount: 1, currency: 'EUR' }, '/id'],
    ['a zero amount', { id: randomUUID(), amount: 0, currency: 'EUR' }, '/amount'],
    ['a fractional amount', { id: randomUUID(), amount: 12.5, currency: 'EUR' }, '/amount'],
    ['an amount as a string', { id: randomUUID(), amount: '10', currency: 'EUR' }, '/amount'],
    ['a lower-case currency', { id: randomUUID(), amount: 1, currency: 'eur' }, '/currency'],
    [
      'a bad createdAt',
      { id: randomUUID(), amount: 1, currency: 'EUR', createdAt: 'yesterday' },
      '/createdAt',
    ],
    [
      'a short card number',
      { id: randomUUID(), amount: 1, currency: 'EUR', card: { pan: '4111' } },
      '/card/pan',
    ],
    [
      'a bad card expiry',
      { id: randomUUID(), amount: 1, currency: 'EUR', card: { pan: PAN, expiry: '13/29' } },
      '/card/expiry',
    ],
    ['an unknown field', { id: randomUUID(), amount: 1, currency: 'EUR', tip: 5 }, '/tip'],
    ['not an object', [1, 2], ''],
  ])('refuses %s with 422 invalid_transaction naming %s; nothing stored', (_n, body, path) => {
    const s = setup();
    store = s.store;
    const e = refused(() => s.queue.submit(body));
    expect(e).toMatchObject({ status: 422, code: 'invalid_transaction' });
    expect(e.message).toContain(`${path || '/'}:`);
    expect(s.rows()).toBe(0);
  });

  it('refuses while locked (423 terminal_locked); nothing stored; a repeat of an earlier sale still gets its 200', () => {
    const s = setup();
    store = s.store;
    const earlier = tx();
    s.queue.submit(earlier);
    s.state.locked = true;
    expect(refused(() => s.queue.submit(tx()))).toMatchObject({ status: 423, code: 'terminal_locked' });
    expect(s.rows()).toBe(1);
    expect(s.queue.submit(earlier).status).toBe(200);
    s.state.online = false;
    expect(s.queue.submit(earlier).status).toBe(200);
  });

  it('offline with offline mode off → 409 offline_disabled; online it is accepted', () => {
    const s = setup({ online: false, offline: { enabled: false } });
    store = s.store;
    const e = refused(() => s.queue.submit(tx()));
    expect(e).toMatchObject({ status: 409, code: 'offline_disabled' });
    expect(e.message).toMatch(/offline mode is off/);
    expect(s.rows()).toBe(0);
    s.state.online = true;
    expect(s.queue.submit(tx()).status).toBe(201);
  });

  it('offline limits: maxAmount, maxTotal per currency, maxQueue — each named; nothing stored by a refusal', () => {
    const s = setup({ online: false });
    store = s.store;
    const overAmount = refused(() => s.queue.submit(tx(5001)));
    expect(overAmount).toMatchObject({ status: 409, code: 'offline_limit_exceeded' });
    expect(overAmount.message).toMatch(/maxAmount 5000/);
    expect(s.queue.submit(tx(5000)).record.offline).toBe(true);
    expect(s.queue.submit(tx(4000)).status).toBe(201);
    const overTotal = refused(() => s.queue.submit(tx(1000)));
    expect(overTotal.message).toMatch(/maxTotal EUR 9000/);
    expect(s.queue.submit(tx(100, { currency: 'USD' })).status).toBe(201); // no USD total set
    const full = refused(() => s.queue.submit(tx(1, { currency: 'USD' })));
    expect(full.message).toMatch(/maxQueue 3/);
    expect(s.rows()).toBe(3);
    // online again: limits do not apply
    s.state.online = true;
    expect(s.queue.submit(tx(99_999)).status).toBe(201);
  });

  it('seals card data before storing it: no card number in the SQLite file, the cloud key opens it', () => {
    const s = setup();
    store = s.store;
    const t = tx(1200, { card: { pan: PAN, expiry: '12/29', holder: 'A CARDHOLDER' } });
    const r = s.queue.submit(t);
    expect(r.record.card).toEqual({ sealed: true });
    s.store.close();
    store = undefined;
    for (const f of [s.file, `${s.file}-wal`]) {
      let bytes: Buffer;
      try {
        bytes = readFileSync(f);
      } catch {
        continue;
      }
      expect(bytes.includes(Buffer.from(PAN)), f).toBe(false);
      expect(bytes.includes(Buffer.from('A CARDHOLDER')), f).toBe(false);
    }
    const again = new AgentStore(s.file);
    store = again;
    const sealed = JSON.parse(again.transactions.get(t.id)!.sealedCard!) as SealedCard;
    expect(openCard(sealed, dataKeys.privateKey)).toEqual({
      pan: PAN,
      expiry: '12/29',
      holder: 'A CARDHOLDER',
    });
  });

  it('a full store answers 507 storage_full and keeps what it has', () => {
    // 120 KB: room for the schema's tables and indexes (one page each) and some rows.
    const s = setup({ maxBytes: 120 * 1024 });
    store = s.store;
    const accepted: string[] = [];
    let full: ReturnType<typeof answered> | undefined;
    for (let i = 0; i < 2000 && !full; i++) {
      const t = tx(100 + i, { card: { pan: PAN } });
      try {
        s.queue.submit(t);
        accepted.push(t.id);
      } catch (err) {
        full = answered(err);
      }
    }
    expect(full).toMatchObject({ status: 507, code: 'storage_full' });
    expect(accepted.length).toBeGreaterThan(10);
    for (const id of accepted) expect(s.store.transactions.get(id)?.state).toBe('stored');
    expect(s.rows()).toBe(accepted.length);
  });

  it('a full store: finished rows give way to new sales, oldest first; only unsent rows can fill it (then 507)', () => {
    const s = setup({ maxBytes: 80 * 1024 });
    store = s.store;
    const iso = () => new Date(s.clock.now).toISOString();
    // 2,000 sales, each forwarded and decided at once, in a store that holds a few hundred: never a 507.
    const finished: string[] = [];
    for (let i = 0; i < 2000; i++) {
      const t = tx(100 + i, { card: { pan: PAN } });
      expect(s.queue.submit(t).status).toBe(201);
      s.store.transactions.markSending([t.id], iso());
      s.store.transactions.applyForwardResults([{ id: t.id, status: 'received' }], iso());
      s.store.transactions.applyDecisions([{ id: t.id, status: 'authorised' }], iso());
      finished.push(t.id);
    }
    const kept = finished.filter((id) => s.store.transactions.get(id));
    expect(kept.length).toBeLessThan(2000);
    expect(kept.length).toBeGreaterThan(0);
    // what went is the oldest: the rows kept are the newest ones, contiguous
    expect(kept).toEqual(finished.slice(finished.length - kept.length));
    // Now nothing is decided any more (the cloud is away): unsent sales fill the store, the
    // finished ones make room until none is left, and then the store refuses with 507.
    const unsent: string[] = [];
    let full: ReturnType<typeof answered> | undefined;
    for (let i = 0; i < 5000 && !full; i++) {
      const t = tx(100 + i, { card: { pan: PAN } });
      try {
        s.queue.submit(t);
        unsent.push(t.id);
      } catch (err) {
        full = answered(err);
      }
    }
    expect(full).toMatchObject({ status: 507, code: 'storage_full' });
    expect(full?.message).toMatch(/not yet with the cloud/);
    expect(finished.filter((id) => s.store.transactions.get(id))).toEqual([]);
    for (const id of unsent) expect(s.store.transactions.get(id)?.state).toBe('stored');
    expect(s.rows()).toBe(unsent.length);
  });

  it('repeats and conflicts do not consume seq numbers: the next sale gets the next number', () => {
    const s = setup();
    store = s.store;
    const t = tx(1000);
    const first = s.queue.submit(t).record.seq;
    for (let i = 0; i < 3; i++) expect(s.queue.submit(t).status).toBe(200);
    for (let i = 0; i < 2; i++)
      expect(refused(() => s.queue.submit({ ...t, amount: 2000 + i })).code).toBe('idempotency_conflict');
    s.state.online = false; // the offline path looks first too
    expect(s.queue.submit(t).status).toBe(200);
    s.state.online = true;
    expect(s.queue.submit(tx(1001)).record.seq).toBe(first + 1);
    expect(s.queue.submit(tx(1002)).record.seq).toBe(first + 2);
  });

  it('expires what the cloud did not receive within maxAgeHours, reports it once, prunes after retention', () => {
    const s = setup({ online: false });
    store = s.store;
    const t = tx(1000);
    s.queue.submit(t);
    s.clock.now += 23 * 3_600_000;
    expect(maintainQueue(s.store.transactions, s.clock.now, 24, 7).expired).toBe(0);
    s.clock.now += 2 * 3_600_000; // 25 h after it was stored
    // Each expired transaction is told as its record (the daemon's `transaction` event), not a count.
    const told: unknown[] = [];
    expect(
      maintainQueue(s.store.transactions, s.clock.now, 24, 7, (row) => told.push(toRecord(row))).expired,
    ).toBe(1);
    expect(told).toEqual([
      expect.objectContaining({
        id: t.id,
        state: 'expired',
        reason: 'not received by the cloud within maxAgeHours',
      }),
    ]);
    expect(s.store.transactions.get(t.id)).toMatchObject({ state: 'expired', reported: 0 });
    // still forwarded (as expired) when the cloud is back, then reported, not forwarded again
    expect(s.store.transactions.toForward(10).map((r) => r.id)).toEqual([t.id]);
    s.store.transactions.applyForwardResults(
      [{ id: t.id, status: 'received' }],
      new Date(s.clock.now).toISOString(),
    );
    expect(s.store.transactions.get(t.id)).toMatchObject({ state: 'expired', reported: 1 });
    expect(s.store.transactions.toForward(10)).toEqual([]);
    // kept through the retention, pruned after it
    s.clock.now += 6 * 86_400_000;
    expect(maintainQueue(s.store.transactions, s.clock.now, 24, 7).pruned).toBe(0);
    s.clock.now += 2 * 86_400_000;
    expect(maintainQueue(s.store.transactions, s.clock.now, 24, 7).pruned).toBe(1);
    expect(s.rows()).toBe(0);
  });

  it('never prunes or expires what is unsent but young, and never prunes unsent rows at all', () => {
    const s = setup();
    store = s.store;
    s.queue.submit(tx(1));
    s.clock.now += 365 * 86_400_000;
    const r = maintainQueue(s.store.transactions, s.clock.now, 72, 7);
    expect(r).toEqual({ expired: 1, pruned: 0 }); // expired (kept, to be reported), not deleted
    expect(s.rows()).toBe(1);
  });
});
