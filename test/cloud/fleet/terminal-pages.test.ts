import { describe, expect, it, vi } from 'vitest';
import { cloudRig, refusalOf } from '../cloud-rig.js';

/**
 * Issue 20, Must show 4: `GET /v1/terminals` pages by keyset in the store — every terminal exactly
 * once while statuses change between pages (heartbeats, deactivations, new enrollments), a
 * cursor whose terminal changed status is still good, and only the page's views are built.
 */
async function fleetOf(n: number) {
  const rig = await cloudRig();
  const loc = await rig.fleet.createLocation({ name: 'Shop' });
  // Rows as enrollment writes them (signing hundreds of real certificates would only be slow).
  let made = 0;
  const enroll = async () => {
    const id = `term_${String(++made).padStart(4, '0')}x`;
    await rig.store.terminals.insert({
      id,
      name: `Till ${made}`,
      locationId: loc.id,
      model: null,
      serialNumber: null,
      softwareVersion: null,
      createdAt: rig.clock.ms,
      certFingerprint: `fp-${id}`,
      certSerial: `sn-${id}`,
      certNotAfter: rig.clock.ms + 90 * 86_400_000,
    });
    return id;
  };
  const ids: string[] = [];
  for (let i = 0; i < n; i++) ids.push(await enroll());
  return { ...rig, loc, ids, enroll };
}

describe('terminal pages under concurrent changes', () => {
  it('every terminal exactly once while statuses change between pages', async () => {
    const rig = await fleetOf(40);
    const seen: string[] = [];
    let after: string | null = null;
    let pages = 0;
    for (;;) {
      const q = new URLSearchParams({ limit: '7', ...(after ? { starting_after: after } : {}) });
      const page = await rig.fleet.listTerminals(q);
      seen.push(...page.data.map((t) => t.id));
      pages++;
      // Between pages, statuses change: the cursor's terminal heartbeats (provisioning → online),
      // others are deactivated, the clock moves past the at-risk threshold.
      const last = page.data.at(-1)?.id;
      if (last) await rig.store.terminals.recordHeartbeat(last, rig.clock.ms, 50, '{}');
      const victim = rig.ids[(pages * 5) % rig.ids.length]!;
      await rig.fleet.deactivateTerminal(victim, 'retired mid-listing');
      rig.clock.ms += 400_000;
      if (!page.has_more) break;
      after = last!;
    }
    expect(pages).toBe(6);
    expect(seen).toHaveLength(40);
    expect(new Set(seen)).toEqual(new Set(rig.ids));
    expect(seen).toEqual([...rig.ids].reverse()); // newest first, in enrollment order
  });

  it('a terminal enrolled mid-listing is not in the pages already past (newest first); none repeats', async () => {
    const rig = await fleetOf(10);
    const first = await rig.fleet.listTerminals(new URLSearchParams('limit=4'));
    const added = await rig.enroll();
    const rest = await rig.fleet.listTerminals(
      new URLSearchParams(`limit=100&starting_after=${first.data.at(-1)!.id}`),
    );
    const all = [...first.data, ...rest.data].map((t) => t.id);
    expect(all).toHaveLength(10);
    expect(all).not.toContain(added);
    expect((await rig.fleet.listTerminals(new URLSearchParams('limit=1'))).data[0]!.id).toBe(added);
  });

  it('a status filter is applied while paging: a cursor whose terminal left the filter is still good', async () => {
    const rig = await fleetOf(12);
    for (const id of rig.ids.slice(0, 6))
      await rig.store.terminals.recordHeartbeat(id, rig.clock.ms, 50, '{}');
    const page1 = await rig.fleet.listTerminals(new URLSearchParams('status=provisioning&limit=3'));
    expect(page1.data.map((t) => t.id)).toEqual(rig.ids.slice(9, 12).reverse());
    // The cursor's terminal heartbeats: it is no longer provisioning; the cursor still works (no 400).
    await rig.store.terminals.recordHeartbeat(page1.data.at(-1)!.id, rig.clock.ms, 50, '{}');
    const page2 = await rig.fleet.listTerminals(
      new URLSearchParams(`status=provisioning&limit=10&starting_after=${page1.data.at(-1)!.id}`),
    );
    expect(page2.data.map((t) => t.id)).toEqual(rig.ids.slice(6, 9).reverse());
    expect(page2.has_more).toBe(false);
  });

  it('only the page is built: a page of 5 out of 200 builds at most 6 views', async () => {
    const rig = await fleetOf(200);
    const spy = vi.spyOn(rig.fleet, 'terminalView');
    const page = await rig.fleet.listTerminals(new URLSearchParams('limit=5'));
    expect(page.data).toHaveLength(5);
    expect(page.has_more).toBe(true);
    expect(spy.mock.calls.length).toBeLessThanOrEqual(6);
  });

  it('bad cursors and limits are refused with a code; nothing else', async () => {
    const rig = await fleetOf(2);
    const cases: [string, RegExp][] = [
      ['limit=0', /limit must be an integer from 1 to 100/],
      ['limit=101', /limit must be an integer from 1 to 100/],
      ['limit=-1', /limit must be an integer/],
      ['limit=abc', /limit must be an integer/],
      ['starting_after=term_gone', /starting_after term_gone is not an item of this list/],
      [`starting_after=${'a'.repeat(65)}`, /starting_after must be the id/],
      ['starting_after=%27%20OR%201%3D1', /starting_after must be the id/],
      [
        'status=broken',
        /status must be one of online, needs_attention, offline, provisioning, error, deactivated/,
      ],
      [`q=${'x'.repeat(101)}`, /q \(a serial, a name or a POIID\) must be 1–100 characters/],
      ['locationId=loc_nope', /no location loc_nope/],
    ];
    for (const [q, message] of cases)
      expect(
        (await refusalOf(async () => await rig.fleet.listTerminals(new URLSearchParams(q)))).message,
      ).toMatch(message);
  });
});
