import { describe, expect, it } from 'vitest';
import type { CloudStore, NewTerminal } from '../../../cloud/store/store-types.js';

/**
 * What every implementation of the cloud store's interfaces (cloud/store/store-types.ts) must do,
 * whatever its engine: run by sqlite-store.test.ts over a real SQLite file; a PostgreSQL
 * implementation runs the same suite.
 */
export function cloudStoreContract(engine: string, open: () => CloudStore): void {
  const terminal = (id: string, locationId = 'loc_1'): NewTerminal => ({
    id,
    name: `Till ${id}`,
    locationId,
    model: null,
    serialNumber: null,
    softwareVersion: '1.0.0',
    createdAt: 1000,
    certFingerprint: `fp-${id}`,
    certSerial: `sn-${id}`,
    certNotAfter: 9_000_000,
  });
  const shop = (id: string, organizationId = 'org_default') => ({
    id,
    name: `Shop ${id}`,
    createdAt: 1,
    organizationId,
    active: true,
    timezone: null,
    address: null,
  });
  const withTerminal = () => {
    const s = open();
    s.locations.insert(shop('loc_1'));
    s.terminals.insert(terminal('term_a'));
    return s;
  };

  describe(`the cloud store contract (${engine})`, () => {
    it('terminals: plain rows (booleans, not 0/1), newest first, deactivated once', () => {
      const s = withTerminal();
      s.terminals.insert(terminal('term_b'));
      expect(s.terminals.get('term_a')).toMatchObject({
        id: 'term_a',
        closedCleanly: false,
        deactivatedAt: null,
      });
      expect(s.terminals.list(null).map((t) => t.id)).toEqual(['term_b', 'term_a']);
      expect(s.terminals.idsAt('loc_1')).toEqual(['term_a', 'term_b']);
      s.terminals.recordDisconnect('term_a', true);
      expect(s.terminals.get('term_a')!.closedCleanly).toBe(true);
      expect(s.terminals.deactivate('term_a', 2000, 'gone')).toBe(true);
      expect(s.terminals.deactivate('term_a', 3000, 'again')).toBe(false);
      expect(s.terminals.get('term_a')).toMatchObject({ deactivatedAt: 2000, deactivationReason: 'gone' });
      s.terminals.setLocked('term_b', true);
      expect(s.terminals.locked('term_b')).toBe(true);
      expect(s.terminals.locked('term_a')).toBe(false);
      s.close();
    });

    it('a renewed certificate is pending until promoted; promoting without one changes nothing', () => {
      const s = withTerminal();
      s.terminals.promotePendingCertificate('term_a');
      expect(s.terminals.get('term_a')!.certFingerprint).toBe('fp-term_a');
      s.terminals.setPendingCertificate('term_a', 'fp-new', 'sn-new', 5);
      s.terminals.promotePendingCertificate('term_a');
      expect(s.terminals.get('term_a')).toMatchObject({
        certFingerprint: 'fp-new',
        pendingFingerprint: null,
      });
      s.close();
    });

    it('configs: versions only go up; a row is written whole', () => {
      const s = withTerminal();
      const v1 = s.configs.nextVersion();
      const v2 = s.configs.nextVersion();
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
      s.configs.put(row);
      s.configs.put({ ...row, status: 'applied', appliedVersion: v2, updatedAt: 6 });
      expect(s.configs.get('term_a')).toEqual({
        ...row,
        status: 'applied',
        appliedVersion: v2,
        updatedAt: 6,
      });
      expect(s.configs.template('loc_1')).toBeNull();
      s.configs.setTemplate('loc_1', '{"tip":{}}', 7);
      expect(s.configs.template('loc_1')).toBe('{"tip":{}}');
      s.close();
    });

    it('transactions: once per (terminal, id); undelivered results by the statuses the caller names', () => {
      const s = withTerminal();
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
      expect(s.transactions.insert(tx('a', 'authorised'))).toBe('received');
      expect(s.transactions.insert(tx('a', 'authorised'))).toBe('duplicate');
      s.transactions.insert(tx('b', 'expired'));
      s.transactions.insert(tx('c', 'declined'));
      expect(s.transactions.get('term_a', 'a')).toMatchObject({
        offline: true,
        deliveries: 2,
        resultDelivered: false,
      });
      const ids = (st: ('authorised' | 'declined' | 'expired')[]) =>
        s.transactions.undelivered('term_a', st, 10).map((r) => r.id);
      expect(ids(['authorised', 'declined'])).toEqual(['a', 'c']);
      expect(ids(['expired'])).toEqual(['b']);
      s.transactions.markDelivered('term_a', ['a']);
      expect(ids(['authorised', 'declined'])).toEqual(['c']);
      expect(s.transactions.list(null, 'declined').map((r) => r.id)).toEqual(['c']);
      s.close();
    });

    it('enrollment: a code is used once; a serial claimed once; a pairing activated once', () => {
      const s = withTerminal();
      s.enrollment.insertCode({
        code: 'ABCD',
        locationId: 'loc_1',
        terminalName: 'T',
        createdAt: 1,
        expiresAt: 2,
        replaces: null,
      });
      expect(s.enrollment.useCode('ABCD', 'term_a', 5)).toBe(true);
      expect(s.enrollment.useCode('ABCD', 'term_b', 6)).toBe(false);
      expect(s.enrollment.getCode('ABCD')).toMatchObject({ usedAt: 5, terminalId: 'term_a' });
      const prereg = { serialNumber: 'S1', locationId: 'loc_1', name: 'S', createdAt: 1 };
      expect(s.enrollment.insertPreregistration(prereg)).toBe(true);
      expect(s.enrollment.insertPreregistration(prereg)).toBe(false);
      expect(s.terminals.serialInUse('S1', 'term_a')).toBe(true);
      expect(s.enrollment.claimSerial('S1', 'term_a', 7)).toBe(true);
      expect(s.enrollment.claimSerial('S1', 'term_b', 8)).toBe(false);
      s.enrollment.insertPairing({
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
      expect(s.enrollmentLimits.pendingPairings(50)).toBe(1);
      expect(s.enrollment.activatePairing('pair_1', 'term_a', '{}', 9)).toBe(true);
      expect(s.enrollment.activatePairing('pair_1', 'term_b', '{}', 10)).toBe(false);
      expect(s.enrollment.getPairingByCode('WXYZ')).toMatchObject({ activatedAt: 9, enrollment: '{}' });
      s.close();
    });

    it('webhooks: an event gets a delivery for each endpoint it is given, and only those', () => {
      const s = withTerminal();
      for (const id of ['we_1', 'we_2'])
        s.webhooks.insertEndpoint({ id, url: 'https://x.example/', events: '[]', secret: 's', createdAt: 1 });
      s.webhooks.insertEvent('evt_1', 'terminal.online', '{}', 10, ['we_2']);
      expect(s.webhooks.due(10, 10).map((d) => d.endpointId)).toEqual(['we_2']);
      expect(s.webhooks.nextAttemptAt()).toBe(10);
      s.webhooks.recordAttempt(s.webhooks.due(10, 10)[0]!.eventSeq, 'we_2', {
        status: 200,
        error: null,
        deliveredAt: 11,
        failedAt: null,
        nextAttemptAt: null,
      });
      expect(s.webhooks.due(100, 10)).toEqual([]);
      expect(s.webhooks.nextAttemptAt()).toBeNull();
      expect(s.webhooks.deliveries('we_2')[0]).toMatchObject({
        attempts: 1,
        deliveredAt: 11,
        lastStatus: 200,
      });
      s.close();
    });

    it('portal: operators by name (unique), sessions by token hash, removed with their operator; audit newest first', () => {
      const s = open();
      const op = { name: 'alice', role: 'admin' as const, passwordHash: 'scrypt$x', createdAt: 1 };
      expect(s.operators.insert(op)).toBe(true);
      expect(s.operators.insert({ ...op, role: 'support' })).toBe(false);
      expect(s.operators.get('alice')).toEqual(op);
      expect(s.operators.setRole('alice', 'support')).toBe(true);
      expect(s.operators.setRole('nobody', 'support')).toBe(false);
      expect(s.operators.setPassword('alice', 'scrypt$y')).toBe(true);
      expect(s.operators.list()).toEqual([{ ...op, role: 'support', passwordHash: 'scrypt$y' }]);
      const session = { tokenHash: 'h1', operator: 'alice', csrfToken: 'c1', createdAt: 10, lastSeenAt: 10 };
      s.portalSessions.insert(session);
      s.portalSessions.insert({ ...session, tokenHash: 'h2', createdAt: 20, lastSeenAt: 20 });
      s.portalSessions.touch('h1', 15);
      expect(s.portalSessions.get('h1')).toEqual({ ...session, lastSeenAt: 15 });
      expect(s.portalSessions.prune(16, 0)).toBe(1);
      expect(s.portalSessions.get('h1')).toBeUndefined();
      expect(s.portalSessions.removeOperator('alice')).toBe(1);
      s.portalSessions.insert(session);
      expect(s.operators.remove('alice')).toBe(true);
      expect(s.portalSessions.get('h1')).toBeUndefined();
      for (const [at, target] of [
        [1, 't1'],
        [2, 't2'],
        [3, 't1'],
      ] as const)
        s.audit.record({
          at,
          operator: 'alice',
          action: 'terminal.reboot',
          target,
          outcome: 'ok',
          detail: null,
        });
      expect(s.audit.forTarget('t1', 10).map((r) => r.at)).toEqual([3, 1]);
      expect(s.audit.recent(2).map((r) => r.at)).toEqual([3, 2]);
      s.close();
    });

    it('organizations: the default one exists; slugs are unique; listed oldest first by keyset', () => {
      const s = open();
      expect(s.organizations.get('org_default')).toMatchObject({ slug: 'default' });
      expect(s.organizations.insert({ id: 'org_a', slug: 'acme', name: 'Acme', createdAt: 5 })).toBe(true);
      expect(s.organizations.insert({ id: 'org_b', slug: 'acme', name: 'Other', createdAt: 6 })).toBe(false);
      expect(s.organizations.insert({ id: 'org_b', slug: 'bistro', name: 'Bistro', createdAt: 6 })).toBe(
        true,
      );
      expect(s.organizations.bySlug('bistro')!.id).toBe('org_b');
      expect(s.organizations.update('org_b', { slug: 'acme' })).toBe(false);
      expect(s.organizations.update('org_b', { name: 'Bistro 2', slug: 'bistro-2' })).toBe(true);
      expect(s.organizations.get('org_b')).toEqual({
        id: 'org_b',
        slug: 'bistro-2',
        name: 'Bistro 2',
        createdAt: 6,
      });
      expect(s.organizations.list({ after: null, limit: 10 }).map((o) => o.id)).toEqual([
        'org_default',
        'org_a',
        'org_b',
      ]);
      expect(s.organizations.list({ after: 'org_a', limit: 10 }).map((o) => o.id)).toEqual(['org_b']);
      s.close();
    });

    it('stores: belong to an organization, active flag as a boolean, listed per organization by keyset', () => {
      const s = open();
      s.organizations.insert({ id: 'org_a', slug: 'acme', name: 'Acme', createdAt: 5 });
      s.locations.insert(shop('loc_1'));
      s.locations.insert({
        ...shop('loc_2', 'org_a'),
        timezone: 'Europe/Berlin',
        address: '{"city":"Berlin"}',
      });
      s.locations.insert(shop('loc_3', 'org_a'));
      expect(s.locations.get('loc_2')).toEqual({
        id: 'loc_2',
        name: 'Shop loc_2',
        createdAt: 1,
        organizationId: 'org_a',
        active: true,
        timezone: 'Europe/Berlin',
        address: '{"city":"Berlin"}',
      });
      s.locations.update('loc_2', { name: 'Front', active: false, timezone: null });
      expect(s.locations.get('loc_2')).toMatchObject({ name: 'Front', active: false, timezone: null });
      expect(s.locations.byName('org_a', 'Front')!.id).toBe('loc_2');
      expect(s.locations.list('org_a', { after: null, limit: 10 }).map((l) => l.id)).toEqual([
        'loc_2',
        'loc_3',
      ]);
      expect(s.locations.list(null, { after: 'loc_1', limit: 1 }).map((l) => l.id)).toEqual(['loc_2']);
      s.close();
    });

    it('terminal pages: newest first by keyset, filtered by store, organization and serial/name/POIID', () => {
      const s = withTerminal();
      s.organizations.insert({ id: 'org_a', slug: 'acme', name: 'Acme', createdAt: 5 });
      s.locations.insert(shop('loc_2', 'org_a'));
      s.terminals.insert({ ...terminal('term_b', 'loc_2'), model: 'nexgo_n92', serialNumber: 'SN-1' });
      s.terminals.insert(terminal('term_c'));
      const ids = (f: object, after: string | null = null, limit = 10) =>
        s.terminals.page(f, { after, limit }).map((t) => t.id);
      expect(ids({})).toEqual(['term_c', 'term_b', 'term_a']);
      expect(ids({}, 'term_c', 1)).toEqual(['term_b']);
      expect(ids({ locationId: 'loc_1' })).toEqual(['term_c', 'term_a']);
      expect(ids({ organizationId: 'org_a' })).toEqual(['term_b']);
      expect(ids({ search: 'sn-1' })).toEqual(['term_b']);
      expect(ids({ search: 'NEXGO_N92-SN-1' })).toEqual(['term_b']);
      expect(ids({ search: 'till term_c' })).toEqual(['term_c']);
      // A terminal without a serial has no POIID: "model-" names none.
      s.terminals.insert({ ...terminal('term_d'), model: 'nexgo_n92', serialNumber: null });
      expect(ids({ search: 'nexgo_n92-' })).toEqual([]);
      expect(s.terminals.at('loc_1').map((t) => t.id)).toEqual(['term_a', 'term_c', 'term_d']);
      s.close();
    });

    it('status history: each announced change with its time, previous status and reason, newest first', () => {
      const s = withTerminal();
      s.terminals.setAnnouncedStatus('term_a', 'online', 10, 'heartbeat');
      s.terminals.setAnnouncedStatus('term_a', 'error', 20, 'clock');
      expect(s.terminals.get('term_a')).toMatchObject({ announcedStatus: 'error', announcedAt: 20 });
      const events = s.terminals.events('term_a', { beforeSeq: null, limit: 10 });
      expect(events.map(({ seq: _, ...e }) => e)).toEqual([
        { terminalId: 'term_a', at: 20, status: 'error', previousStatus: 'online', reason: 'clock' },
        { terminalId: 'term_a', at: 10, status: 'online', previousStatus: null, reason: 'heartbeat' },
      ]);
      expect(s.terminals.events('term_a', { beforeSeq: events[0]!.seq, limit: 10 })).toEqual([events[1]]);
      s.close();
    });

    it('problems, clock skew, replacement links and revoked certificates', () => {
      const s = withTerminal();
      s.terminals.setProblem('term_a', 'certificate_revoked', 7);
      s.terminals.recordClockSkew('term_a', 172_800_000.4);
      s.terminals.setReplacedBy('term_a', 'term_z');
      expect(s.terminals.get('term_a')).toMatchObject({
        problem: 'certificate_revoked',
        problemAt: 7,
        clockSkewMs: 172_800_000,
        replacedBy: 'term_z',
        replaces: null,
      });
      s.terminals.setProblem('term_a', null, null);
      expect(s.terminals.get('term_a')).toMatchObject({ problem: null, problemAt: null });
      s.terminals.insert({ ...terminal('term_z'), replaces: 'term_a' });
      expect(s.terminals.get('term_z')!.replaces).toBe('term_a');
      s.terminals.setPendingCertificate('term_a', 'fp-pending', 'sn-p', 9);
      expect(s.terminals.isRevoked('fp-term_a')).toBe(false);
      s.terminals.revokeCertificate('term_a', 'fp-term_a', 8);
      s.terminals.revokeCertificate('term_a', 'fp-pending', 8);
      expect(s.terminals.isRevoked('fp-term_a')).toBe(true);
      expect(s.terminals.get('term_a')!.pendingFingerprint).toBeNull();
      s.close();
    });

    it('enrollment codes: listed newest first by keyset; revoked once, and a revoked code cannot be used', () => {
      const s = withTerminal();
      for (const [code, at] of [
        ['C1', 1],
        ['C2', 2],
        ['C3', 3],
      ] as const)
        s.enrollment.insertCode({
          code,
          locationId: 'loc_1',
          terminalName: 'T',
          createdAt: at,
          expiresAt: 100,
          replaces: null,
          reprovisions: code === 'C3' ? 'term_a' : null,
        });
      expect(s.enrollment.listCodes(null, { after: null, limit: 2 }).map((c) => c.code)).toEqual([
        'C3',
        'C2',
      ]);
      expect(s.enrollment.listCodes('loc_1', { after: 'C2', limit: 2 }).map((c) => c.code)).toEqual(['C1']);
      expect(s.enrollment.getCode('C3')).toMatchObject({ reprovisions: 'term_a', revokedAt: null });
      expect(s.enrollment.revokeCode('C2', 9)).toBe(true);
      expect(s.enrollment.revokeCode('C2', 10)).toBe(false);
      expect(s.enrollment.useCode('C2', 'term_a', 11)).toBe(false);
      expect(s.enrollment.getCode('C2')).toMatchObject({ revokedAt: 9, usedAt: null });
      s.close();
    });

    it('webhook endpoints: paged oldest first; a deleted one is gone from lists, its pending deliveries given up', () => {
      const s = withTerminal();
      for (const id of ['we_1', 'we_2', 'we_3'])
        s.webhooks.insertEndpoint({ id, url: 'https://x.example/', events: '[]', secret: 's', createdAt: 1 });
      expect(s.webhooks.pageEndpoints({ after: 'we_1', limit: 1 }).map((e) => e.id)).toEqual(['we_2']);
      s.webhooks.insertEvent('evt_1', 'terminal.online', '{}', 10, ['we_2', 'we_3']);
      expect(s.webhooks.deleteEndpoint('we_2', 20)).toBe(true);
      expect(s.webhooks.deleteEndpoint('we_2', 21)).toBe(false);
      expect(s.webhooks.getEndpoint('we_2')).toBeUndefined();
      expect(s.webhooks.listEndpoints().map((e) => e.id)).toEqual(['we_1', 'we_3']);
      expect(s.webhooks.due(100, 10).map((d) => d.endpointId)).toEqual(['we_3']);
      expect(s.webhooks.deliveries('we_2')[0]).toMatchObject({ failedAt: 20, lastError: 'endpoint deleted' });
      s.close();
    });

    it('transactions: paged in the order received by keyset; found by id across terminals', () => {
      const s = withTerminal();
      s.terminals.insert(terminal('term_b'));
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
        s.transactions.insert(tx(t, id));
      const ids = (
        f: { terminalId: string | null; status: string | null },
        after: string | null,
        limit = 10,
      ) => s.transactions.page(f, { after, limit }).map((r) => r.id);
      expect(ids({ terminalId: null, status: null }, null, 2)).toEqual(['a1', 'b1']);
      expect(ids({ terminalId: null, status: null }, 'b1')).toEqual(['a2']);
      expect(ids({ terminalId: 'term_a', status: null }, 'a1')).toEqual(['a2']);
      expect(ids({ terminalId: null, status: 'declined' }, null)).toEqual([]);
      expect(s.transactions.byId('b1')!.terminalId).toBe('term_b');
      expect(s.transactions.byId('zz')).toBeUndefined();
      s.close();
    });

    it('the transaction helper: all writes land or none; it nests', () => {
      const s = withTerminal();
      expect(() =>
        s.transaction(() => {
          s.terminals.insert(terminal('term_x'));
          s.transaction(() => s.terminals.update('term_a', { name: 'Renamed' }));
          throw new Error('no');
        }),
      ).toThrow('no');
      expect(s.terminals.get('term_x')).toBeUndefined();
      expect(s.terminals.get('term_a')!.name).toBe('Till term_a');
      expect(s.transaction(() => 42)).toBe(42);
      s.close();
    });
  });
}
