import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { EnvelopePool } from '../../../cloud/ledger/envelope-pool.js';
import { DECLINE_SUFFIX, TransactionLedger } from '../../../cloud/ledger/transaction-ledger.js';
import { rsaCsr } from '../../support/csrs.js';
import { cloudRig } from '../cloud-rig.js';

async function ledgerRig() {
  const rig = await cloudRig();
  const loc = await rig.fleet.createLocation({ name: 'Shop' });
  const { code } = await rig.enrollment.createEnrollmentCode({ locationId: loc.id, terminalName: 'Till' });
  const { terminalId } = await rig.enrollment.enroll({ method: 'code', code, csr: rsaCsr().csr }, '10.0.0.1');
  const key = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({
    type: 'pkcs8',
    format: 'pem',
  });
  // Items without card data never reach a worker: the pool is real, and spawns none.
  const envelopes = new EnvelopePool({ dataPrivateKeyPem: key.toString(), maxQueued: 10, log: rig.log });
  const ledger = new TransactionLedger({
    store: rig.store,
    envelopes,
    now: () => rig.clock.ms,
    log: rig.log,
  });
  return { ...rig, terminalId, ledger };
}

const item = (id: string, amount: number, extra: object = {}) => ({
  id,
  seq: 1,
  amount,
  currency: 'EUR',
  createdAt: '2026-06-01T11:59:00Z',
  offline: true,
  expired: false,
  card: null,
  ...extra,
});

describe('TransactionLedger in-process (cloud/ledger/transaction-ledger.ts)', () => {
  it('GET /v1/transactions pages by keyset with limit and starting_after (has_more); times are Unix seconds', async () => {
    const rig = await ledgerRig();
    await rig.ledger.forward(rig.terminalId, {
      items: ['t1', 't2', 't3', 't4', 't5'].map((id) => item(id, 1000)),
    });
    const first = await rig.ledger.list(new URLSearchParams({ terminalId: rig.terminalId, limit: '2' }));
    expect(first.data.map((t) => t.id)).toEqual(['t1', 't2']);
    expect(first.has_more).toBe(true);
    expect(first.data[0]).toMatchObject({
      createdAt: Date.parse('2026-06-01T11:59:00Z') / 1000,
      receivedAt: Math.floor(rig.clock.ms / 1000),
    });
    const rest = await rig.ledger.list(new URLSearchParams({ limit: '10', starting_after: 't2' }));
    expect(rest.data.map((t) => t.id)).toEqual(['t3', 't4', 't5']);
    expect(rest.has_more).toBe(false);
    // Without limit, every one (as before paging).
    expect((await rig.ledger.list(new URLSearchParams())).data).toHaveLength(5);
    await expect(rig.ledger.list(new URLSearchParams({ starting_after: 'nope' }))).rejects.toThrow(
      /starting_after nope is not an item of this list/,
    );
  });

  it('decides by the documented rule, once per id; a repeat is a duplicate and only counted', async () => {
    const rig = await ledgerRig();
    const a = await rig.ledger.forward(rig.terminalId, {
      items: [item('a', 1000), item('b', 1000 + DECLINE_SUFFIX), item('c', 500, { expired: true })],
    });
    expect(a.results).toEqual([
      { id: 'a', status: 'received' },
      { id: 'b', status: 'received' },
      { id: 'c', status: 'received' },
    ]);
    const again = await rig.ledger.forward(rig.terminalId, { items: [item('a', 1000)] });
    expect(again.results).toEqual([{ id: 'a', status: 'duplicate' }]);
    const list = await rig.ledger.list(new URLSearchParams({ terminalId: rig.terminalId }));
    expect(list.data.map((t) => [t.id, t.status, t.deliveries, t.offline])).toEqual([
      ['a', 'authorised', 2, true],
      ['b', 'declined', 1, true],
      ['c', 'expired', 1, true],
    ]);
  });

  it('the terminal is told decisions only (not expired ones), oldest first, until it answered', async () => {
    const rig = await ledgerRig();
    await rig.ledger.forward(rig.terminalId, {
      items: [item('a', 1000), item('c', 500, { expired: true }), item('b', 1051)],
    });
    expect(await rig.ledger.pendingResults(rig.terminalId)).toEqual([
      { id: 'a', status: 'authorised' },
      { id: 'b', status: 'declined', reason: 'insufficient funds' },
    ]);
    await rig.ledger.markDelivered(rig.terminalId, ['a']);
    expect((await rig.ledger.pendingResults(rig.terminalId)).map((r) => r.id)).toEqual(['b']);
  });

  it('a list query that does not fit is refused with a code; an unknown terminal is not_found', async () => {
    const rig = await ledgerRig();
    await expect(rig.ledger.list(new URLSearchParams({ state: 'lost' }))).rejects.toThrow(
      expect.objectContaining({ code: 'invalid_request' }),
    );
    await expect(rig.ledger.list(new URLSearchParams({ terminalId: 'term_nope' }))).rejects.toThrow(
      expect.objectContaining({ code: 'not_found' }),
    );
  });
});
