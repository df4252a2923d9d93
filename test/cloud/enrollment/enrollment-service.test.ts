import { describe, expect, it } from 'vitest';
import { rsaCsr } from '../../support/csrs.js';
import { cloudRig, refusalOf } from '../cloud-rig.js';

const SOURCE = '10.0.0.9';

describe('EnrollmentService in-process (cloud/enrollment/enrollment-service.ts)', () => {
  it('a code enrolls once: the terminal exists, terminal.enrolled is said, a second use is code_used and stores nothing', async () => {
    const rig = await cloudRig();
    const loc = rig.fleet.createLocation({ name: 'Shop' });
    const { code } = rig.enrollment.createEnrollmentCode({ locationId: loc.id, terminalName: 'Till' });
    const first = rig.enrollment.enroll({ method: 'code', code, csr: rsaCsr().csr }, SOURCE);
    expect(rig.store.terminals.get(first.terminalId)).toMatchObject({ name: 'Till', locationId: loc.id });
    expect(rig.events).toEqual([
      {
        name: 'terminal.enrolled',
        payload: { terminalId: first.terminalId, method: 'code', replaces: null },
      },
    ]);
    const r = refusalOf(() => rig.enrollment.enroll({ method: 'code', code, csr: rsaCsr().csr }, SOURCE));
    expect(r.code).toBe('code_used');
    expect(rig.store.terminals.list(null)).toHaveLength(1);
  });

  it('an unknown code is invalid_code; an expired one code_expired; each failure counts against the budget', async () => {
    const rig = await cloudRig();
    const loc = rig.fleet.createLocation({ name: 'Shop' });
    expect(
      refusalOf(() => rig.enrollment.enroll({ method: 'code', code: 'ZZZZ-ZZZZ', csr: rsaCsr().csr }, SOURCE))
        .code,
    ).toBe('invalid_code');
    const { code } = rig.enrollment.createEnrollmentCode({
      locationId: loc.id,
      terminalName: 'Till',
      ttlSeconds: 60,
    });
    rig.clock.ms += 60_000;
    const r = refusalOf(() => rig.enrollment.enroll({ method: 'code', code, csr: rsaCsr().csr }, SOURCE));
    expect(r.code).toBe('code_expired');
    expect(rig.store.enrollmentLimits.failures('code', SOURCE, 0)).toBe(2);
    expect(rig.store.terminals.list(null)).toEqual([]);
  });

  it('past the budget: rate_limited, with the seconds to wait in details (the REST edge makes Retry-After of it)', async () => {
    const rig = await cloudRig();
    for (let i = 0; i < 10; i++)
      refusalOf(() => rig.enrollment.enroll({ method: 'code', code: `BAD${i}`, csr: rsaCsr().csr }, SOURCE));
    const r = refusalOf(() =>
      rig.enrollment.enroll({ method: 'code', code: 'BAD', csr: rsaCsr().csr }, SOURCE),
    );
    expect(r.code).toBe('rate_limited');
    expect(r.details.retryAfterSec).toBeGreaterThan(0);
  });

  it('pairing: pending until activated, then the device collects; a second activation is code_used', async () => {
    const rig = await cloudRig();
    const loc = rig.fleet.createLocation({ name: 'Shop' });
    const p = rig.enrollment.startPairing({ csr: rsaCsr().csr }, SOURCE);
    expect(rig.enrollment.pollPairing(p.pairingId, { pairingSecret: p.pairingSecret }, SOURCE)).toMatchObject(
      {
        status: 'pending',
      },
    );
    const terminalId = rig.enrollment.activate(
      { activationCode: p.activationCode, locationId: loc.id },
      SOURCE,
    );
    expect(rig.enrollment.pollPairing(p.pairingId, { pairingSecret: p.pairingSecret }, SOURCE)).toMatchObject(
      {
        status: 'activated',
        enrollment: { terminalId },
      },
    );
    expect(
      refusalOf(() =>
        rig.enrollment.activate({ activationCode: p.activationCode, locationId: loc.id }, SOURCE),
      ).code,
    ).toBe('code_used');
    expect(rig.store.terminals.list(null)).toHaveLength(1);
  });

  it('an expired pairing answers code_expired and cannot be activated', async () => {
    const rig = await cloudRig();
    const loc = rig.fleet.createLocation({ name: 'Shop' });
    const p = rig.enrollment.startPairing({ csr: rsaCsr().csr }, SOURCE);
    rig.clock.ms += 600_000;
    expect(
      refusalOf(() => rig.enrollment.pollPairing(p.pairingId, { pairingSecret: p.pairingSecret }, SOURCE))
        .code,
    ).toBe('code_expired');
    expect(
      refusalOf(() =>
        rig.enrollment.activate({ activationCode: p.activationCode, locationId: loc.id }, SOURCE),
      ).code,
    ).toBe('code_expired');
    expect(rig.store.terminals.list(null)).toEqual([]);
  });

  it('a replacement code: the new terminal takes the old one’s config, and the old one is deactivated in the same transaction', async () => {
    const rig = await cloudRig();
    const loc = rig.fleet.createLocation({ name: 'Shop' });
    const { code } = rig.enrollment.createEnrollmentCode({ locationId: loc.id, terminalName: 'Till' });
    const old = rig.enrollment.enroll({ method: 'code', code, csr: rsaCsr().csr }, SOURCE).terminalId;
    rig.fleet.configureTerminal(old, { display: { idleMessage: 'Mine' } });
    const repl = rig.enrollment.replaceTerminal(old, {});
    const fresh = rig.enrollment.enroll(
      { method: 'code', code: repl.code, csr: rsaCsr().csr },
      SOURCE,
    ).terminalId;
    expect(rig.store.terminals.get(old)!.deactivationReason).toBe(`replaced by terminal ${fresh}`);
    expect(JSON.parse(rig.store.configs.get(fresh)!.overrides)).toEqual({ display: { idleMessage: 'Mine' } });
    expect(refusalOf(() => rig.enrollment.replaceTerminal(old, {})).code).toBe('terminal_deactivated');
  });

  it('a pre-registration with a key that is no key: invalid_request of kind content (422 at the edge); nothing stored', async () => {
    const rig = await cloudRig();
    const loc = rig.fleet.createLocation({ name: 'Shop' });
    const r = refusalOf(() =>
      rig.enrollment.createPreregistration({
        serialNumber: 'SN1',
        locationId: loc.id,
        devicePublicKey: 'nope',
      }),
    );
    expect(r.code).toBe('invalid_request');
    expect(r.details).toEqual({ kind: 'content' });
    expect(rig.store.enrollment.listPreregistrations()).toEqual([]);
  });
});
