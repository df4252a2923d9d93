import { describe, expect, it } from 'vitest';
import type { CloudStore } from '../../../cloud/store/store-types.js';
import { shopRow, terminalRow } from './store-rows.js';

/**
 * What every implementation of the cloud store's interfaces (cloud/store/store-types.ts) must do,
 * whatever its engine: run by sqlite-store.test.ts over a real SQLite file and by
 * postgres-store.test.ts over a real PostgreSQL server (a new database per test).
 */
export function cloudStoreContract(engine: string, open: () => Promise<CloudStore> | CloudStore): void {
  const terminal = terminalRow;
  const shop = shopRow;
  const withTerminal = async () => {
    const s = await open();
    await s.locations.insert(shop('loc_1'));
    await s.terminals.insert(terminal('term_a'));
    return s;
  };

  describe(`the cloud store contract (${engine})`, () => {
    it('terminals: plain rows (booleans, not 0/1), newest first, deactivated once', async () => {
      const s = await withTerminal();
      await s.terminals.insert(terminal('term_b'));
      expect(await s.terminals.get('term_a')).toMatchObject({
        id: 'term_a',
        closedCleanly: false,
        deactivatedAt: null,
      });
      expect((await s.terminals.list(null)).map((t) => t.id)).toEqual(['term_b', 'term_a']);
      expect(await s.terminals.idsAt('loc_1')).toEqual(['term_a', 'term_b']);
      // Many in one read: those that exist, as plain rows; none asked, none read.
      const many = await s.terminals.getMany([
        'term_b',
        'term_nope',
        'term_a',
        "x'); DROP TABLE terminals; --",
      ]);
      expect(many.map((t) => t.id).sort()).toEqual(['term_a', 'term_b']);
      expect(many.find((t) => t.id === 'term_a')).toEqual(await s.terminals.get('term_a'));
      expect(await s.terminals.getMany([])).toEqual([]);
      await s.terminals.recordDisconnect('term_a', true);
      expect((await s.terminals.get('term_a'))!.closedCleanly).toBe(true);
      expect(await s.terminals.deactivate('term_a', 2000, 'gone')).toBe(true);
      expect(await s.terminals.deactivate('term_a', 3000, 'again')).toBe(false);
      expect(await s.terminals.get('term_a')).toMatchObject({
        deactivatedAt: 2000,
        deactivationReason: 'gone',
      });
      await s.terminals.setLocked('term_b', true);
      expect(await s.terminals.locked('term_b')).toBe(true);
      expect(await s.terminals.locked('term_a')).toBe(false);
      await s.close();
    });

    it('a renewed certificate is pending until promoted; promoting without one changes nothing', async () => {
      const s = await withTerminal();
      await s.terminals.promotePendingCertificate('term_a');
      expect((await s.terminals.get('term_a'))!.certFingerprint).toBe('fp-term_a');
      await s.terminals.setPendingCertificate('term_a', 'fp-new', 'sn-new', 5);
      await s.terminals.promotePendingCertificate('term_a');
      expect(await s.terminals.get('term_a')).toMatchObject({
        certFingerprint: 'fp-new',
        pendingFingerprint: null,
      });
      await s.close();
    });

    it('configs: versions only go up; a row is written whole', async () => {
      const s = await withTerminal();
      const v1 = await s.configs.nextVersion();
      const v2 = await s.configs.nextVersion();
      expect(v2).toBeGreaterThan(v1);
      const row = {
        terminalId: 'term_a',
        overrides: '{}',
        desired: '{"x":1}',
        version: v2,
        appliedVersion: null,
        status: 'pending' as const,
        errors: null,
        updatedAt: 5,
      };
      await s.configs.put(row);
      await s.configs.put({ ...row, status: 'applied', appliedVersion: v2, updatedAt: 6 });
      expect(await s.configs.get('term_a')).toEqual({
        ...row,
        status: 'applied',
        appliedVersion: v2,
        updatedAt: 6,
      });
      expect(await s.configs.template('loc_1')).toBeNull();
      await s.configs.setTemplate('loc_1', '{"tip":{}}', 7);
      expect(await s.configs.template('loc_1')).toBe('{"tip":{}}');
      await s.close();
    });

    it('transactions: once per (terminal, id); undelivered results by the statuses the caller names', async () => {
      const s = await withTerminal();
      const tx = (id: string, status: 'authorised' | 'declined' | 'expired') => ({
        terminalId: 'term_a',
        id,
        seq: 1,
        amount: 100,
        currency: 'EUR',
        createdAt: '2026-01-01T00:00:00Z',
        receivedAt: 10,
        offline: true,
        expired: status === 'expired',
        cardLast4: null,
        status,
        reason: null,
      });
      expect(await s.transactions.insert(tx('a', 'authorised'))).toBe('received');
      expect(await s.transactions.insert(tx('a', 'authorised'))).toBe('duplicate');
      await s.transactions.insert(tx('b', 'expired'));
      await s.transactions.insert(tx('c', 'declined'));
      expect(await s.transactions.get('term_a', 'a')).toMatchObject({
        offline: true,
        deliveries: 2,
        resultDelivered: false,
      });
      const ids = async (st: ('authorised' | 'declined' | 'expired')[]) =>
        (await s.transactions.undelivered('term_a', st, 10)).map((r) => r.id);
      expect(await ids(['authorised', 'declined'])).toEqual(['a', 'c']);
      expect(await ids(['expired'])).toEqual(['b']);
      await s.transactions.markDelivered('term_a', ['a']);
      expect(await ids(['authorised', 'declined'])).toEqual(['c']);
      expect((await s.transactions.list(null, 'declined')).map((r) => r.id)).toEqual(['c']);
      await s.close();
    });

    it('enrollment: a code is used once; a serial claimed once; a pairing activated once', async () => {
      const s = await withTerminal();
      await s.enrollment.insertCode({
        code: 'ABCD',
        locationId: 'loc_1',
        terminalName: 'T',
        createdAt: 1,
        expiresAt: 2,
        replaces: null,
      });
      expect(await s.enrollment.useCode('ABCD', 'term_a', 5)).toBe(true);
      expect(await s.enrollment.useCode('ABCD', 'term_b', 6)).toBe(false);
      expect(await s.enrollment.getCode('ABCD')).toMatchObject({ usedAt: 5, terminalId: 'term_a' });
      const prereg = { serialNumber: 'S1', locationId: 'loc_1', name: 'S', createdAt: 1 };
      expect(await s.enrollment.insertPreregistration(prereg)).toBe(true);
      expect(await s.enrollment.insertPreregistration(prereg)).toBe(false);
      expect(await s.terminals.serialInUse('S1', 'term_a')).toBe(true);
      expect(await s.enrollment.claimSerial('S1', 'term_a', 7)).toBe(true);
      expect(await s.enrollment.claimSerial('S1', 'term_b', 8)).toBe(false);
      await s.enrollment.insertPairing({
        id: 'pair_1',
        secretHash: 'h',
        activationCode: 'WXYZ',
        csr: 'csr',
        serialNumber: null,
        model: null,
        softwareVersion: null,
        createdAt: 1,
        expiresAt: 100,
        source: '10.0.0.1',
      });
      expect(await s.enrollmentLimits.pendingPairings(50)).toBe(1);
      expect(await s.enrollment.activatePairing('pair_1', 'term_a', '{}', 9)).toBe(true);
      expect(await s.enrollment.activatePairing('pair_1', 'term_b', '{}', 10)).toBe(false);
      expect(await s.enrollment.getPairingByCode('WXYZ')).toMatchObject({ activatedAt: 9, enrollment: '{}' });
      await s.close();
    });

    it('webhooks: an event gets a delivery for each endpoint it is given, and only those', async () => {
      const s = await withTerminal();
      for (const id of ['we_1', 'we_2'])
        await s.webhooks.insertEndpoint({
          id,
          url: 'https://x.example/',
          events: '[]',
          secret: 's',
          createdAt: 1,
        });
      await s.webhooks.insertEvent('evt_1', 'terminal.online', '{}', 10, ['we_2']);
      expect((await s.webhooks.due(10, 10)).map((d) => d.endpointId)).toEqual(['we_2']);
      expect(await s.webhooks.nextAttemptAt()).toBe(10);
      await s.webhooks.recordAttempt((await s.webhooks.due(10, 10))[0]!.eventSeq, 'we_2', {
        status: 200,
        error: null,
        deliveredAt: 11,
        failedAt: null,
        nextAttemptAt: null,
      });
      expect(await s.webhooks.due(100, 10)).toEqual([]);
      expect(await s.webhooks.nextAttemptAt()).toBeNull();
      expect((await s.webhooks.deliveries('we_2'))[0]).toMatchObject({
        attempts: 1,
        deliveredAt: 11,
        lastStatus: 200,
      });
      await s.close();
    });

    it('portal: operators by name (unique), sessions by token hash, removed with their operator; audit newest first', async () => {
      const s = await open();
      const op = { name: 'alice', role: 'admin' as const, passwordHash: 'scrypt$x', createdAt: 1 };
      expect(await s.operators.insert(op)).toBe(true);
      expect(await s.operators.insert({ ...op, role: 'support' })).toBe(false);
      expect(await s.operators.get('alice')).toEqual(op);
      expect(await s.operators.setRole('alice', 'support')).toBe(true);
      expect(await s.operators.setRole('nobody', 'support')).toBe(false);
      expect(await s.operators.setPassword('alice', 'scrypt$y')).toBe(true);
      expect(await s.operators.list()).toEqual([{ ...op, role: 'support', passwordHash: 'scrypt$y' }]);
      const session = { tokenHash: 'h1', operator: 'alice', csrfToken: 'c1', createdAt: 10, lastSeenAt: 10 };
      await s.portalSessions.insert(session);
      await s.portalSessions.insert({ ...session, tokenHash: 'h2', createdAt: 20, lastSeenAt: 20 });
      await s.portalSessions.touch('h1', 15);
      expect(await s.portalSessions.get('h1')).toEqual({ ...session, lastSeenAt: 15 });
      expect(await s.portalSessions.prune(16, 0)).toBe(1);
      expect(await s.portalSessions.get('h1')).toBeUndefined();
      expect(await s.portalSessions.removeOperator('alice')).toBe(1);
      await s.portalSessions.insert(session);
      expect(await s.operators.remove('alice')).toBe(true);
      expect(await s.portalSessions.get('h1')).toBeUndefined();
      for (const [at, target] of [
        [1, 't1'],
        [2, 't2'],
        [3, 't1'],
      ] as const)
        await s.audit.record({
          at,
          operator: 'alice',
          action: 'terminal.reboot',
          target,
          outcome: 'ok',
          detail: null,
        });
      expect((await s.audit.forTarget('t1', 10)).map((r) => r.at)).toEqual([3, 1]);
      expect((await s.audit.recent(2)).map((r) => r.at)).toEqual([3, 2]);
      await s.close();
    });

    it('organizations: the default one exists; slugs are unique; listed oldest first by keyset', async () => {
      const s = await open();
      expect(await s.organizations.get('org_default')).toMatchObject({ slug: 'default' });
      expect(await s.organizations.insert({ id: 'org_a', slug: 'acme', name: 'Acme', createdAt: 5 })).toBe(
        true,
      );
      expect(await s.organizations.insert({ id: 'org_b', slug: 'acme', name: 'Other', createdAt: 6 })).toBe(
        false,
      );
      expect(
        await s.organizations.insert({ id: 'org_b', slug: 'bistro', name: 'Bistro', createdAt: 6 }),
      ).toBe(true);
      expect((await s.organizations.bySlug('bistro'))!.id).toBe('org_b');
      expect(await s.organizations.update('org_b', { slug: 'acme' })).toBe(false);
      expect(await s.organizations.update('org_b', { name: 'Bistro 2', slug: 'bistro-2' })).toBe(true);
      expect(await s.organizations.get('org_b')).toEqual({
        id: 'org_b',
        slug: 'bistro-2',
        name: 'Bistro 2',
        createdAt: 6,
      });
      expect((await s.organizations.list({ after: null, limit: 10 })).map((o) => o.id)).toEqual([
        'org_default',
        'org_a',
        'org_b',
      ]);
      expect((await s.organizations.list({ after: 'org_a', limit: 10 })).map((o) => o.id)).toEqual(['org_b']);
      await s.close();
    });

    it('stores: belong to an organization, active flag as a boolean, listed per organization by keyset', async () => {
      const s = await open();
      await s.organizations.insert({ id: 'org_a', slug: 'acme', name: 'Acme', createdAt: 5 });
      await s.locations.insert(shop('loc_1'));
      await s.locations.insert({
        ...shop('loc_2', 'org_a'),
        timezone: 'Europe/Berlin',
        address: '{"city":"Berlin"}',
      });
      await s.locations.insert(shop('loc_3', 'org_a'));
      expect(await s.locations.get('loc_2')).toEqual({
        id: 'loc_2',
        name: 'Shop loc_2',
        createdAt: 1,
        organizationId: 'org_a',
        active: true,
        timezone: 'Europe/Berlin',
        address: '{"city":"Berlin"}',
      });
      await s.locations.update('loc_2', { name: 'Front', active: false, timezone: null });
      expect(await s.locations.get('loc_2')).toMatchObject({ name: 'Front', active: false, timezone: null });
      expect((await s.locations.byName('org_a', 'Front'))!.id).toBe('loc_2');
      expect((await s.locations.list('org_a', { after: null, limit: 10 })).map((l) => l.id)).toEqual([
        'loc_2',
        'loc_3',
      ]);
      expect((await s.locations.list(null, { after: 'loc_1', limit: 1 })).map((l) => l.id)).toEqual([
        'loc_2',
      ]);
      await s.close();
    });

    it('terminal pages: newest first by keyset, filtered by store, organization and serial/name/POIID', async () => {
      const s = await withTerminal();
      await s.organizations.insert({ id: 'org_a', slug: 'acme', name: 'Acme', createdAt: 5 });
      await s.locations.insert(shop('loc_2', 'org_a'));
      await s.terminals.insert({ ...terminal('term_b', 'loc_2'), model: 'nexgo_n92', serialNumber: 'SN-1' });
      await s.terminals.insert(terminal('term_c'));
      const ids = async (f: object, after: string | null = null, limit = 10) =>
        (await s.terminals.page(f, { after, limit })).map((t) => t.id);
      expect(await ids({})).toEqual(['term_c', 'term_b', 'term_a']);
      expect(await ids({}, 'term_c', 1)).toEqual(['term_b']);
      expect(await ids({ locationId: 'loc_1' })).toEqual(['term_c', 'term_a']);
      expect(await ids({ organizationId: 'org_a' })).toEqual(['term_b']);
      expect(await ids({ search: 'sn-1' })).toEqual(['term_b']);
      expect(await ids({ search: 'NEXGO_N92-SN-1' })).toEqual(['term_b']);
      expect(await ids({ search: 'till term_c' })).toEqual(['term_c']);
      // A terminal without a serial has no POIID: "model-" names none.
      await s.terminals.insert({ ...terminal('term_d'), model: 'nexgo_n92', serialNumber: null });
      expect(await ids({ search: 'nexgo_n92-' })).toEqual([]);
      expect((await s.terminals.at('loc_1')).map((t) => t.id)).toEqual(['term_a', 'term_c', 'term_d']);
      await s.close();
    });

    it('status history: each announced change with its time, previous status and reason, newest first', async () => {
      const s = await withTerminal();
      expect(await s.terminals.setAnnouncedStatus('term_a', null, 'online', 10, 'heartbeat')).toBe(true);
      expect(await s.terminals.setAnnouncedStatus('term_a', 'online', 'error', 20, 'clock')).toBe(true);
      // A second check that read the status before the first wrote (another gateway): nothing written.
      expect(await s.terminals.setAnnouncedStatus('term_a', 'online', 'error', 21, 'clock')).toBe(false);
      expect(await s.terminals.setAnnouncedStatus('term_a', null, 'offline', 22, 'link')).toBe(false);
      expect(await s.terminals.get('term_a')).toMatchObject({ announcedStatus: 'error', announcedAt: 20 });
      const events = await s.terminals.events('term_a', { beforeSeq: null, limit: 10 });
      expect(events.map(({ seq: _, ...e }) => e)).toEqual([
        { terminalId: 'term_a', at: 20, status: 'error', previousStatus: 'online', reason: 'clock' },
        { terminalId: 'term_a', at: 10, status: 'online', previousStatus: null, reason: 'heartbeat' },
      ]);
      expect(await s.terminals.events('term_a', { beforeSeq: events[0]!.seq, limit: 10 })).toEqual([
        events[1],
      ]);
      await s.close();
    });

    it('problems, clock skew, replacement links and revoked certificates', async () => {
      const s = await withTerminal();
      await s.terminals.setProblem('term_a', 'certificate_revoked', 7);
      await s.terminals.recordClockSkew('term_a', 172_800_000.4);
      await s.terminals.setReplacedBy('term_a', 'term_z');
      expect(await s.terminals.get('term_a')).toMatchObject({
        problem: 'certificate_revoked',
        problemAt: 7,
        clockSkewMs: 172_800_000,
        replacedBy: 'term_z',
        replaces: null,
      });
      await s.terminals.setProblem('term_a', null, null);
      expect(await s.terminals.get('term_a')).toMatchObject({ problem: null, problemAt: null });
      await s.terminals.insert({ ...terminal('term_z'), replaces: 'term_a' });
      expect((await s.terminals.get('term_z'))!.replaces).toBe('term_a');
      await s.terminals.setPendingCertificate('term_a', 'fp-pending', 'sn-p', 9);
      expect(await s.terminals.isRevoked('fp-term_a')).toBe(false);
      await s.terminals.revokeCertificate('term_a', 'fp-term_a', 8);
      await s.terminals.revokeCertificate('term_a', 'fp-pending', 8);
      expect(await s.terminals.isRevoked('fp-term_a')).toBe(true);
      expect((await s.terminals.get('term_a'))!.pendingFingerprint).toBeNull();
      await s.close();
    });

    it('enrollment codes: listed newest first by keyset; revoked once, and a revoked code cannot be used', async () => {
      const s = await withTerminal();
      for (const [code, at] of [
        ['C1', 1],
        ['C2', 2],
        ['C3', 3],
      ] as const)
        await s.enrollment.insertCode({
          code,
          locationId: 'loc_1',
          terminalName: 'T',
          createdAt: at,
          expiresAt: 100,
          replaces: null,
          reprovisions: code === 'C3' ? 'term_a' : null,
        });
      expect((await s.enrollment.listCodes(null, { after: null, limit: 2 })).map((c) => c.code)).toEqual([
        'C3',
        'C2',
      ]);
      expect((await s.enrollment.listCodes('loc_1', { after: 'C2', limit: 2 })).map((c) => c.code)).toEqual([
        'C1',
      ]);
      expect(await s.enrollment.getCode('C3')).toMatchObject({ reprovisions: 'term_a', revokedAt: null });
      expect(await s.enrollment.revokeCode('C2', 9)).toBe(true);
      expect(await s.enrollment.revokeCode('C2', 10)).toBe(false);
      expect(await s.enrollment.useCode('C2', 'term_a', 11)).toBe(false);
      expect(await s.enrollment.getCode('C2')).toMatchObject({ revokedAt: 9, usedAt: null });
      await s.close();
    });

    it('webhook endpoints: paged oldest first; a deleted one is gone from lists, its pending deliveries given up', async () => {
      const s = await withTerminal();
      for (const id of ['we_1', 'we_2', 'we_3'])
        await s.webhooks.insertEndpoint({
          id,
          url: 'https://x.example/',
          events: '[]',
          secret: 's',
          createdAt: 1,
        });
      expect((await s.webhooks.pageEndpoints({ after: 'we_1', limit: 1 })).map((e) => e.id)).toEqual([
        'we_2',
      ]);
      await s.webhooks.insertEvent('evt_1', 'terminal.online', '{}', 10, ['we_2', 'we_3']);
      expect(await s.webhooks.deleteEndpoint('we_2', 20)).toBe(true);
      expect(await s.webhooks.deleteEndpoint('we_2', 21)).toBe(false);
      expect(await s.webhooks.getEndpoint('we_2')).toBeUndefined();
      expect((await s.webhooks.listEndpoints()).map((e) => e.id)).toEqual(['we_1', 'we_3']);
      expect((await s.webhooks.due(100, 10)).map((d) => d.endpointId)).toEqual(['we_3']);
      expect((await s.webhooks.deliveries('we_2'))[0]).toMatchObject({
        failedAt: 20,
        lastError: 'endpoint deleted',
      });
      await s.close();
    });

    it('transactions: paged in the order received by keyset; found by id across terminals', async () => {
      const s = await withTerminal();
      await s.terminals.insert(terminal('term_b'));
      const tx = (terminalId: string, id: string) => ({
        terminalId,
        id,
        seq: 1,
        amount: 100,
        currency: 'EUR',
        createdAt: '2026-01-01T00:00:00Z',
        receivedAt: 10,
        offline: false,
        expired: false,
        cardLast4: null,
        status: 'authorised' as const,
        reason: null,
      });
      for (const [t, id] of [
        ['term_a', 'a1'],
        ['term_b', 'b1'],
        ['term_a', 'a2'],
      ] as const)
        await s.transactions.insert(tx(t, id));
      const ids = async (
        f: { terminalId: string | null; status: string | null },
        after: string | null,
        limit = 10,
      ) => (await s.transactions.page(f, { after, limit })).map((r) => r.id);
      expect(await ids({ terminalId: null, status: null }, null, 2)).toEqual(['a1', 'b1']);
      expect(await ids({ terminalId: null, status: null }, 'b1')).toEqual(['a2']);
      expect(await ids({ terminalId: 'term_a', status: null }, 'a1')).toEqual(['a2']);
      expect(await ids({ terminalId: null, status: 'declined' }, null)).toEqual([]);
      expect((await s.transactions.byId('b1'))!.terminalId).toBe('term_b');
      expect(await s.transactions.byId('zz')).toBeUndefined();
      await s.close();
    });

    it("presence: the newest link wins by version; a late close of an old link changes nothing; a dead gateway's links expire with its lease", async () => {
      const s = await withTerminal();
      const v1 = await s.gateways.nextLinkVersion();
      const v2 = await s.gateways.nextLinkVersion();
      expect(v2).toBeGreaterThan(v1);
      expect(await s.terminals.registerLink('term_a', 'gw_a', v1)).toBe(true);
      expect(await s.terminals.get('term_a')).toMatchObject({ linkGateway: 'gw_a', linkVersion: v1 });
      // The terminal reconnects to another gateway before the old socket's close is seen.
      expect(await s.terminals.registerLink('term_a', 'gw_b', v2)).toBe(true);
      expect(await s.terminals.registerLink('term_a', 'gw_a', v1)).toBe(false);
      expect(await s.terminals.releaseLink('term_a', v1)).toBe(false);
      expect(await s.terminals.get('term_a')).toMatchObject({ linkGateway: 'gw_b', linkVersion: v2 });
      await s.gateways.renewLease('gw_b', 1_000);
      await s.gateways.renewLease('gw_c', 5_000);
      expect(await s.gateways.live(500)).toEqual(['gw_b', 'gw_c']);
      expect(await s.gateways.connectedIds(500)).toEqual(['term_a']);
      expect(await s.gateways.connectedIds(1_000)).toEqual([]);
      expect(await s.gateways.expire(2_000)).toBe(1);
      expect(await s.gateways.live(2_000)).toEqual(['gw_c']);
      expect((await s.terminals.get('term_a'))!.linkGateway).toBeNull();
      // Its own close, when it comes, finds nothing to clear.
      expect(await s.terminals.releaseLink('term_a', v2)).toBe(false);
      const v3 = await s.gateways.nextLinkVersion();
      expect(await s.terminals.registerLink('term_a', 'gw_c', v3)).toBe(true);
      expect(await s.terminals.releaseLink('term_a', v3)).toBe(true);
      expect((await s.terminals.get('term_a'))!.linkGateway).toBeNull();
      await s.close();
    });

    it('heartbeats in one statement: each terminal of the batch gets its last seen, battery, health and clock skew', async () => {
      const s = await withTerminal();
      await s.terminals.insert(terminal('term_b'));
      expect(await s.terminals.recordHeartbeats([])).toBe(0);
      const n = await s.terminals.recordHeartbeats([
        { id: 'term_a', at: 5_000, batteryLevel: 40, health: '{"a":1}', clockSkewMs: 120.4 },
        { id: 'term_b', at: 6_000, batteryLevel: null, health: '{"b":2}', clockSkewMs: -30 },
        { id: 'term_gone', at: 7_000, batteryLevel: 1, health: '{}', clockSkewMs: 0 },
      ]);
      expect(n).toBe(2);
      expect(await s.terminals.get('term_a')).toMatchObject({
        lastSeen: 5_000,
        batteryLevel: 40,
        health: '{"a":1}',
        clockSkewMs: 120,
        closedCleanly: false,
      });
      expect(await s.terminals.get('term_b')).toMatchObject({
        lastSeen: 6_000,
        batteryLevel: null,
        clockSkewMs: -30,
      });
      await s.close();
    });

    it('link calls: taken once, oldest first, by the gateway they are for, until they expire; answered; pruned', async () => {
      const s = await withTerminal();
      const call = (id: string, createdAt: number, gatewayId = 'gw_b') => ({
        id,
        terminalId: 'term_a',
        gatewayId,
        kind: 'ping',
        payload: '{}',
        fromGateway: 'gw_a',
        createdAt,
        expiresAt: createdAt + 1_000,
      });
      await s.linkCalls.insert(call('c2', 20));
      await s.linkCalls.insert(call('c1', 10));
      await s.linkCalls.insert(call('c3', 30, 'gw_c'));
      await s.linkCalls.insert(call('old', 0));
      expect((await s.linkCalls.take('gw_b', 1_005, 10)).map((c) => c.id)).toEqual(['c1', 'c2']);
      expect(await s.linkCalls.take('gw_b', 1_005, 10)).toEqual([]);
      await s.linkCalls.answer('c1', '{"ok":true}');
      expect(await s.linkCalls.get('c1')).toMatchObject({
        answer: '{"ok":true}',
        fromGateway: 'gw_a',
        kind: 'ping',
      });
      expect(await s.linkCalls.get('c2')).toMatchObject({ answer: null });
      expect(await s.linkCalls.prune(1_015)).toBe(2);
      expect(await s.linkCalls.get('c2')).toBeDefined();
      expect(await s.linkCalls.get('c3')).toBeDefined();
      await s.close();
    });

    it('the transaction helper: all writes land or none; it nests', async () => {
      const s = await withTerminal();
      await expect(
        s.transaction(async () => {
          await s.terminals.insert(terminal('term_x'));
          await s.transaction(async () => s.terminals.update('term_a', { name: 'Renamed' }));
          throw new Error('no');
        }),
      ).rejects.toThrow('no');
      expect(await s.terminals.get('term_x')).toBeUndefined();
      expect((await s.terminals.get('term_a'))!.name).toBe('Till term_a');
      expect(await s.transaction(async () => 42)).toBe(42);
      // A nested transaction that fails undoes only its own writes when the outer one catches it.
      await s.transaction(async () => {
        await s.terminals.update('term_a', { name: 'Outer' });
        await s
          .transaction(async () => {
            await s.terminals.update('term_a', { name: 'Inner' });
            throw new Error('inner');
          })
          .catch(() => undefined);
      });
      expect((await s.terminals.get('term_a'))!.name).toBe('Outer');
      await s.close();
    });

    it('a write from outside a transaction never lands inside one that is waiting (it waits, or runs beside it)', async () => {
      const s = await withTerminal();
      let release!: () => void;
      const gate = new Promise<void>((r) => {
        release = r;
      });
      let entered!: () => void;
      const inside = new Promise<void>((r) => {
        entered = r;
      });
      const tx = s
        .transaction(async () => {
          await s.terminals.update('term_a', { name: 'In the transaction' });
          entered();
          await gate;
          throw new Error('rolled back');
        })
        .catch((err: Error) => err.message);
      await inside;
      // Another caller writes while the transaction waits; the transaction then rolls back.
      const outside = s.terminals.insert(terminal('term_outside'));
      release();
      expect(await tx).toBe('rolled back');
      await outside;
      expect(await s.terminals.get('term_outside')).toBeDefined();
      expect((await s.terminals.get('term_a'))!.name).toBe('Till term_a');
      await s.close();
    });

    it('issue 24: deployments — targets in groups, counts, a move only from the state named, the rate, pages', async () => {
      const s = await open();
      const row = {
        id: 'dep_1',
        name: 'Winter release',
        releaseVersion: '1.2.0',
        target: '{"organizationId":"org_default"}',
        groups: '[{"percent":20},{"percent":100}]',
        rules: '{}',
        state: 'running' as const,
        reason: null,
        startedGroups: 1,
        groupCount: 2,
        now: false,
        startAt: null,
        createdAt: 100,
        updatedAt: 100,
      };
      const targets = ['t1', 't2', 't3', 't4', 't5'].map((terminalId, i) => ({
        terminalId,
        groupIndex: i < 1 ? 0 : 1,
      }));
      await s.transaction(() => s.deployments.insert(row, targets));
      await s.deployments.insert({ ...row, id: 'dep_2', state: 'completed', createdAt: 200 }, []);
      expect(await s.deployments.get('dep_1')).toEqual(row);
      expect((await s.deployments.list({ after: null, limit: 10 })).map((d) => d.id)).toEqual([
        'dep_2',
        'dep_1',
      ]);
      expect((await s.deployments.list({ after: 'dep_2', limit: 10 })).map((d) => d.id)).toEqual(['dep_1']);
      expect((await s.deployments.active()).map((d) => d.id)).toEqual(['dep_1']);
      expect((await s.deployments.lock('dep_1'))?.id).toBe('dep_1');
      expect((await s.deployments.queued('dep_1', 1, 10)).map((t) => t.terminalId)).toEqual(['t1']);
      expect(
        await s.deployments.moveTarget('dep_1', 't1', 'queued', { state: 'processing', askedAt: 150 }, 150),
      ).toBe(true);
      expect(
        await s.deployments.moveTarget('dep_1', 't1', 'queued', { state: 'processing', askedAt: 151 }, 151),
      ).toBe(false);
      expect(await s.deployments.stranded('dep_1', 200)).toMatchObject([
        { terminalId: 't1', actionId: null, askedAt: 150 },
      ]);
      await s.deployments.moveTarget(
        'dep_1',
        't1',
        'processing',
        { state: 'processing', actionId: 'act_1' },
        152,
      );
      expect(await s.deployments.stranded('dep_1', 200)).toEqual([]);
      expect(await s.deployments.byAction('act_1')).toMatchObject({
        terminalId: 't1',
        state: 'processing',
        groupIndex: 0,
      });
      expect(await s.deployments.askedSince('dep_1', 149)).toBe(1);
      expect(await s.deployments.askedSince('dep_1', 150)).toBe(0);
      await s.deployments.moveTarget('dep_1', 't1', 'processing', { state: 'failed', reason: 'boom' }, 160);
      expect(await s.deployments.counts('dep_1')).toEqual([
        { groupIndex: 0, state: 'failed', n: 1 },
        { groupIndex: 1, state: 'queued', n: 4 },
      ]);
      await s.deployments.update('dep_1', {
        state: 'stopped',
        reason: 'too many failures',
        startedGroups: 1,
        updatedAt: 170,
      });
      expect(await s.deployments.skipQueued('dep_1', 'the deployment stopped', 170)).toBe(4);
      expect(await s.deployments.get('dep_1')).toMatchObject({
        state: 'stopped',
        reason: 'too many failures',
      });
      const page1 = await s.deployments.targets('dep_1', { after: null, limit: 3 });
      expect(page1.map((t) => t.terminalId)).toEqual(['t1', 't2', 't3']);
      const last = page1[2]!;
      const page2 = await s.deployments.targets('dep_1', {
        after: { groupIndex: last.groupIndex, terminalId: last.terminalId },
        limit: 3,
      });
      expect(page2.map((t) => [t.terminalId, t.state, t.reason])).toEqual([
        ['t4', 'skipped', 'the deployment stopped'],
        ['t5', 'skipped', 'the deployment stopped'],
      ]);
      expect(await s.deployments.active()).toEqual([]);
      await s.close();
    });

    it('issue 24: log bundles — bytes kept exactly, one per action', async () => {
      const s = await open();
      const gzip = Buffer.from([0x1f, 0x8b, 0, 1, 2, 255]);
      expect(
        await s.logBundles.put({ actionId: 'act_1', terminalId: 't1', gzip, size: 6, receivedAt: 5 }),
      ).toBe(true);
      expect(
        await s.logBundles.put({
          actionId: 'act_1',
          terminalId: 't1',
          gzip: Buffer.from('x'),
          size: 1,
          receivedAt: 6,
        }),
      ).toBe(false);
      const got = await s.logBundles.get('act_1');
      expect(Buffer.from(got!.gzip).equals(gzip)).toBe(true);
      expect(got).toMatchObject({ actionId: 'act_1', terminalId: 't1', size: 6, receivedAt: 5 });
      expect(await s.logBundles.get('act_2')).toBeUndefined();
      await s.close();
    });

    it('issue 22: releases — the artifact in pieces, byte for byte, with its row, where the store keeps artifacts (PostgreSQL); SQLite refuses them', async () => {
      const s = await open();
      const row = {
        version: '1.2.0',
        sha256: 'ab'.repeat(32),
        size: 5,
        signature: 'c2lnbmF0dXJlLW9mLTEuMi4w',
        file: '/data/releases/1.2.0.tgz',
        createdAt: 10,
      };
      const pieces = [Buffer.from([0, 1, 2]), Buffer.from([255, 254])];
      await s.transaction(async () => {
        await s.releases.insert(row);
        if (s.releases.keepsArtifacts)
          for (const [seq, bytes] of pieces.entries()) await s.releases.insertChunk('1.2.0', seq, bytes);
      });
      expect(await s.releases.get('1.2.0')).toMatchObject(row);
      expect(s.releases.keepsArtifacts).toBe(engine === 'PostgreSQL');
      if (s.releases.keepsArtifacts) {
        expect(Buffer.from((await s.releases.chunk('1.2.0', 0))!).equals(pieces[0]!)).toBe(true);
        expect(Buffer.from((await s.releases.chunk('1.2.0', 1))!).equals(pieces[1]!)).toBe(true);
        expect(await s.releases.chunk('1.2.0', 2)).toBeUndefined();
        // A piece of no release, or a piece twice, is refused.
        await expect(s.releases.insertChunk('9.9.9', 0, Buffer.from([1]))).rejects.toThrow();
        await expect(s.releases.insertChunk('1.2.0', 1, Buffer.from([1]))).rejects.toThrow();
        expect(Buffer.from((await s.releases.chunk('1.2.0', 1))!).equals(pieces[1]!)).toBe(true);
        // Removed whole (to be written again), and written again.
        await s.releases.deleteChunks('1.2.0');
        expect(await s.releases.chunk('1.2.0', 0)).toBeUndefined();
        await s.releases.insertChunk('1.2.0', 0, pieces[0]!);
        expect(Buffer.from((await s.releases.chunk('1.2.0', 0))!).equals(pieces[0]!)).toBe(true);
      } else {
        await s.releases.deleteChunks('1.2.0');
        await expect(s.releases.insertChunk('1.2.0', 0, Buffer.from([1]))).rejects.toThrow(
          'the SQLite store keeps no artifact bytes (release 1.2.0): its file is the artifact',
        );
        expect(await s.releases.chunk('1.2.0', 0)).toBeUndefined();
      }
      // A publish that fails half way leaves neither its row nor its pieces.
      await expect(
        s.transaction(async () => {
          await s.releases.insert({ ...row, version: '1.3.0' });
          if (s.releases.keepsArtifacts) await s.releases.insertChunk('1.3.0', 0, Buffer.from([7]));
          throw new Error('the upload broke');
        }),
      ).rejects.toThrow('the upload broke');
      expect(await s.releases.get('1.3.0')).toBeUndefined();
      expect(await s.releases.chunk('1.3.0', 0)).toBeUndefined();
      expect((await s.releases.list()).map((r) => r.version)).toEqual(['1.2.0']);
      await s.close();
    });
  });
}
