import { describe, expect, it } from 'vitest';
import { rsaCsr } from '../../support/csrs.js';
import { cloudRig, refusalOf } from '../cloud-rig.js';

const SOURCE = '10.0.0.9';

describe('EnrollmentService in-process (cloud/enrollment/enrollment-service.ts)', () => {
  it('a code enrolls once: the terminal exists, terminal.enrolled is said, a second use is code_used and stores nothing', async () => {
    const rig = await cloudRig();
    const loc = await rig.fleet.createLocation({ name: 'Shop' });
    const { code } = await rig.enrollment.createEnrollmentCode({ locationId: loc.id, terminalName: 'Till' });
    const first = await rig.enrollment.enroll({ method: 'code', code, csr: rsaCsr().csr }, SOURCE);
    expect(await rig.store.terminals.get(first.terminalId)).toMatchObject({
      name: 'Till',
      locationId: loc.id,
    });
    expect(rig.events).toEqual([
      {
        name: 'terminal.enrolled',
        payload: { terminalId: first.terminalId, method: 'code', replaces: null },
      },
    ]);
    const r = await refusalOf(
      async () => await rig.enrollment.enroll({ method: 'code', code, csr: rsaCsr().csr }, SOURCE),
    );
    expect(r.code).toBe('code_used');
    expect(await rig.store.terminals.list(null)).toHaveLength(1);
  });

  it('an unknown code is invalid_code; an expired one code_expired; each failure counts against the budget', async () => {
    const rig = await cloudRig();
    const loc = await rig.fleet.createLocation({ name: 'Shop' });
    expect(
      (
        await refusalOf(
          async () =>
            await rig.enrollment.enroll({ method: 'code', code: 'ZZZZ-ZZZZ', csr: rsaCsr().csr }, SOURCE),
        )
      ).code,
    ).toBe('invalid_code');
    const { code } = await rig.enrollment.createEnrollmentCode({
      locationId: loc.id,
      terminalName: 'Till',
      ttlSeconds: 60,
    });
    rig.clock.ms += 60_000;
    const r = await refusalOf(
      async () => await rig.enrollment.enroll({ method: 'code', code, csr: rsaCsr().csr }, SOURCE),
    );
    expect(r.code).toBe('code_expired');
    expect(await rig.store.enrollmentLimits.failures('code', SOURCE, 0)).toBe(2);
    expect(await rig.store.terminals.list(null)).toEqual([]);
  });

  it('past the budget: rate_limited, with the seconds to wait in details (the REST edge makes Retry-After of it)', async () => {
    const rig = await cloudRig();
    for (let i = 0; i < 10; i++)
      await refusalOf(
        async () =>
          await rig.enrollment.enroll({ method: 'code', code: `BAD${i}`, csr: rsaCsr().csr }, SOURCE),
      );
    const r = await refusalOf(
      async () => await rig.enrollment.enroll({ method: 'code', code: 'BAD', csr: rsaCsr().csr }, SOURCE),
    );
    expect(r.code).toBe('rate_limited');
    expect(r.details.retryAfterSec).toBeGreaterThan(0);
  });

  it('pairing: pending until activated, then the device collects; a second activation is code_used', async () => {
    const rig = await cloudRig();
    const loc = await rig.fleet.createLocation({ name: 'Shop' });
    const p = await rig.enrollment.startPairing({ csr: rsaCsr().csr }, SOURCE);
    expect(
      await rig.enrollment.pollPairing(p.pairingId, { pairingSecret: p.pairingSecret }, SOURCE),
    ).toMatchObject({
      status: 'pending',
    });
    const terminalId = await rig.enrollment.activate(
      { activationCode: p.activationCode, locationId: loc.id },
      SOURCE,
    );
    expect(
      await rig.enrollment.pollPairing(p.pairingId, { pairingSecret: p.pairingSecret }, SOURCE),
    ).toMatchObject({
      status: 'activated',
      enrollment: { terminalId },
    });
    expect(
      (
        await refusalOf(
          async () =>
            await rig.enrollment.activate({ activationCode: p.activationCode, locationId: loc.id }, SOURCE),
        )
      ).code,
    ).toBe('code_used');
    expect(await rig.store.terminals.list(null)).toHaveLength(1);
  });

  it('an expired pairing answers code_expired and cannot be activated', async () => {
    const rig = await cloudRig();
    const loc = await rig.fleet.createLocation({ name: 'Shop' });
    const p = await rig.enrollment.startPairing({ csr: rsaCsr().csr }, SOURCE);
    rig.clock.ms += 600_000;
    expect(
      (
        await refusalOf(
          async () =>
            await rig.enrollment.pollPairing(p.pairingId, { pairingSecret: p.pairingSecret }, SOURCE),
        )
      ).code,
    ).toBe('code_expired');
    expect(
      (
        await refusalOf(
          async () =>
            await rig.enrollment.activate({ activationCode: p.activationCode, locationId: loc.id }, SOURCE),
        )
      ).code,
    ).toBe('code_expired');
    expect(await rig.store.terminals.list(null)).toEqual([]);
  });

  it('a replacement code: the new terminal takes the old one’s config, and the old one is deactivated in the same transaction', async () => {
    const rig = await cloudRig();
    const loc = await rig.fleet.createLocation({ name: 'Shop' });
    const { code } = await rig.enrollment.createEnrollmentCode({ locationId: loc.id, terminalName: 'Till' });
    const old = (await rig.enrollment.enroll({ method: 'code', code, csr: rsaCsr().csr }, SOURCE)).terminalId;
    await rig.fleet.configureTerminal(old, { display: { idleMessage: 'Mine' } });
    const repl = await rig.enrollment.replaceTerminal(old, {});
    const fresh = (
      await rig.enrollment.enroll({ method: 'code', code: repl.code, csr: rsaCsr().csr }, SOURCE)
    ).terminalId;
    expect((await rig.store.terminals.get(old))!.deactivationReason).toBe(`replaced by terminal ${fresh}`);
    expect(JSON.parse((await rig.store.configs.get(fresh))!.overrides)).toEqual({
      display: { idleMessage: 'Mine' },
    });
    expect((await refusalOf(async () => await rig.enrollment.replaceTerminal(old, {}))).code).toBe(
      'terminal_deactivated',
    );
  });

  it('a pre-registration with a key that is no key: invalid_request of kind content (422 at the edge); nothing stored', async () => {
    const rig = await cloudRig();
    const loc = await rig.fleet.createLocation({ name: 'Shop' });
    const r = await refusalOf(
      async () =>
        await rig.enrollment.createPreregistration({
          serialNumber: 'SN1',
          locationId: loc.id,
          devicePublicKey: 'nope',
        }),
    );
    expect(r.code).toBe('invalid_request');
    expect(r.details).toEqual({ kind: 'content' });
    expect(await rig.store.enrollment.listPreregistrations()).toEqual([]);
  });
});
