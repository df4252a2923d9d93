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
  const withTerminal = () => {
    const s = open();
    s.locations.insert({ id: 'loc_1', name: 'Shop', createdAt: 1 });
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
