import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enrollByApi } from '../support/api-terminal.js';
import { cloudCount } from '../support/cloud-db.js';
import { type Cloud, startCloud } from '../support/processes.js';
import { openRawLink } from '../support/raw-link.js';
import { startRestProbe } from '../support/rest-probe.js';

/** A sealed-card envelope of the right shape and sizes, whose contents are noise: the cloud must do a full RSA-OAEP private-key operation to find out. */
function garbageEnvelope() {
  return {
    alg: 'RSA-OAEP-256+A256GCM',
    ek: randomBytes(256).toString('base64'),
    iv: randomBytes(12).toString('base64'),
    ct: randomBytes(96).toString('base64'),
    tag: randomBytes(16).toString('base64'),
  };
}

function batch(size: number, seq0: number) {
  return Array.from({ length: size }, (_, i) => ({
    id: randomUUID(),
    seq: seq0 + i,
    amount: 1000 + i,
    currency: 'EUR',
    createdAt: new Date().toISOString(),
    offline: false,
    expired: false,
    card: garbageEnvelope(),
  }));
}

/**
 * Issue 17.2: heavy work off the event loop, with quotas per link. 10 TransactionsForward frames
 * of 500 garbage envelopes each blocked the cloud 13 s (one synchronous RSA-OAEP decrypt per
 * item on the event loop). Now envelopes are opened in a worker pool, one forward may be in
 * flight per link (the others get quota error frames at once), and the REST API keeps answering.
 */
describe('an envelope flood on one link', () => {
  let cloud: Cloud;
  let terminal: { id: string; key: string; cert: string };
  beforeAll(async () => {
    cloud = await startCloud();
    terminal = await enrollByApi(cloud, 'Till F');
  });
  afterAll(() => cloud?.stop());

  it('10 × 500 bad envelopes, three times over: REST probe p99 < 100 ms during; the link gets quota errors; the bad ones are kept as invalid and visible', async () => {
    const waves = 3;
    const frames = Array.from({ length: waves }, (_, w) =>
      Array.from({ length: 10 }, (_, f) => ({ items: batch(500, 1 + (w * 10 + f) * 500) })),
    );
    const link = await openRawLink(cloud, terminal);
    expect((await link.hello(terminal.id))[0]).toBe(3);
    const probe = await startRestProbe(cloud);
    const accepted: unknown[][] = [];
    const refused: unknown[][] = [];
    const t0 = performance.now();
    const waveEnds: number[] = [];
    for (const wave of frames) {
      const ids = wave.map((payload) => link.send('TransactionsForward', payload));
      const answers = await Promise.all(ids.map((id) => link.answerTo(id, 50_000)));
      for (const a of answers) (a[0] === 3 ? accepted : refused).push(a);
      waveEnds.push(Math.round(performance.now() - t0));
    }
    const attackMs = performance.now() - t0;
    const figures = await probe.stop();
    console.log(
      `envelope flood: ${waves} waves of 10 × 500 in ${Math.round(attackMs)} ms (waves ended at ${waveEnds.join(', ')} ms), ${accepted.length} batches accepted, ${refused.length} refused; REST probe during: ${JSON.stringify(figures)}`,
    );
    expect(accepted).toHaveLength(waves);
    expect(refused).toHaveLength(waves * 9);
    for (const r of refused) {
      expect(r[2]).toBe('GenericError');
      expect(r[3]).toMatch(/^quota exceeded: at most 1 TransactionsForward in flight per link/);
      expect(r[4]).toEqual({ quota: 'forwards_in_flight', limit: 1 });
    }
    for (const a of accepted) {
      const results = (a[2] as { results: { status: string; reason?: string }[] }).results;
      expect(results).toHaveLength(500);
      expect(new Set(results.map((x) => `${x.status}: ${x.reason}`))).toEqual(
        new Set(['invalid: card data cannot be opened by this cloud']),
      );
    }
    expect(figures.errors).toBe(0);
    expect(figures.count).toBeGreaterThan(20);
    expect(figures.p99).toBeLessThan(100);
    expect(link.ws.readyState).toBe(link.ws.OPEN);

    // Kept, not dropped: every accepted item is stored as invalid, with its reason, and listed.
    expect(cloudCount(cloud.dataDir, 'transactions', "status = 'invalid'")).toBe(waves * 500);
    const listed = await cloud.api<{ data: { status: string; reason: string; card: unknown }[] }>(
      'GET',
      `/v1/transactions?terminalId=${terminal.id}&state=invalid`,
    );
    expect(listed.status).toBe(200);
    expect(listed.body.data).toHaveLength(waves * 500);
    expect(listed.body.data[0]).toMatchObject({
      status: 'invalid',
      reason: 'card data cannot be opened by this cloud',
      card: null,
    });
    expect((await cloud.api('GET', '/v1/transactions?state=authorised')).body).toMatchObject({ data: [] });
    const bad = await cloud.api<{ error: { code: string; message: string } }>(
      'GET',
      '/v1/transactions?state=bogus',
    );
    expect(bad.status).toBe(400);
    expect(bad.body.error).toEqual({
      code: 'invalid_request',
      message: 'state must be one of authorised, declined, expired, invalid',
    });

    // A repeat of an invalid one is answered invalid again (not "duplicate"), still one row.
    const first = (frames[0]![0]!.items as { id: string }[])[0]!;
    const again = await link.call('TransactionsForward', { items: [frames[0]![0]!.items[0]] });
    expect(again[0]).toBe(3);
    expect((again[2] as { results: unknown[] }).results).toEqual([
      { id: first.id, status: 'invalid', reason: 'card data cannot be opened by this cloud' },
    ]);
    expect(cloudCount(cloud.dataDir, 'transactions', 'id = ?', first.id)).toBe(1);
    link.close();
  });
});
