import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { rsaCsr } from '../../support/csrs.js';
import { cloudRig, refusalOf } from '../cloud-rig.js';

async function enrolledTerminal() {
  const rig = await cloudRig();
  const loc = await rig.fleet.createLocation({ name: 'Shop' });
  const { code } = await rig.enrollment.createEnrollmentCode({ locationId: loc.id, terminalName: 'Till 1' });
  const { terminalId } = await rig.enrollment.enroll({ method: 'code', code, csr: rsaCsr().csr }, '10.0.0.1');
  return { ...rig, loc, terminalId };
}

describe('FleetService in-process (cloud/fleet/fleet-service.ts)', () => {
  it('a bad location is refused with a code and no status; nothing is stored', async () => {
    const rig = await cloudRig();
    const r = await refusalOf(async () => await rig.fleet.createLocation({ name: '' }));
    expect(r.code).toBe('invalid_request');
    expect(r).not.toHaveProperty('status');
    expect((await refusalOf(async () => await rig.fleet.getLocation('loc_nope'))).code).toBe('not_found');
  });

  it('an enrolled terminal has its desired config from the start: pending, from its location', async () => {
    const rig = await enrolledTerminal();
    expect(await rig.store.configs.get(rig.terminalId)).toMatchObject({
      status: 'pending',
      appliedVersion: null,
    });
    expect(rig.events.map((e) => e.name)).toEqual(['terminal.enrolled']);
  });

  it('a GET never writes: terminal, list, config, template and diagnostics leave the database as it was', async () => {
    const rig = await enrolledTerminal();
    const db = () => readFileSync(join(rig.dir, 'cloud.db-wal')).toString('base64');
    await rig.store.transaction(async () => {}); // settle
    const before = db();
    const counter = (await rig.store.configs.get(rig.terminalId))!.version;
    await rig.fleet.getTerminal(rig.terminalId);
    await rig.fleet.listTerminals(new URLSearchParams());
    await rig.fleet.getTerminalConfig(rig.terminalId);
    await rig.fleet.getLocationTemplate(rig.loc.id);
    await rig.fleet.getLocation(rig.loc.id);
    expect((await refusalOf(async () => await rig.fleet.lastDiagnostics(rig.terminalId))).code).toBe(
      'not_found',
    );
    expect(db()).toBe(before);
    expect((await rig.store.configs.get(rig.terminalId))!.version).toBe(counter);
    expect(rig.events.map((e) => e.name)).toEqual(['terminal.enrolled']);
  });

  it('configure: the fleet hands over what to push (version and config), not a terminal id to look up', async () => {
    const rig = await enrolledTerminal();
    const view = await rig.fleet.configureTerminal(rig.terminalId, { display: { idleMessage: 'Hello' } });
    const pushed = rig.events.at(-1)!;
    expect(pushed.name).toBe('config.desired');
    const [push] = (
      pushed.payload as { pushes: { terminalId: string; version: number; config: { display: object } }[] }
    ).pushes;
    expect(push).toMatchObject({ terminalId: rig.terminalId, version: view.config.version });
    expect(push!.config.display).toMatchObject({ idleMessage: 'Hello' });
  });

  it('a bad config is refused (invalid_config) and the stored config does not change', async () => {
    const rig = await enrolledTerminal();
    const before = await rig.store.configs.get(rig.terminalId);
    const r = await refusalOf(
      async () => await rig.fleet.configureTerminal(rig.terminalId, { tip: { mode: 'nope' } }),
    );
    expect(r.code).toBe('invalid_config');
    expect(r.message).toMatch(/^invalid configuration: /);
    expect(await rig.store.configs.get(rig.terminalId)).toEqual(before);
  });

  it("the terminal's answer moves the rollout: applied for the version sent, only appliedVersion for an older one", async () => {
    const rig = await enrolledTerminal();
    const v1 = (await rig.store.configs.get(rig.terminalId))!.version;
    await rig.fleet.configureTerminal(rig.terminalId, { display: { idleMessage: 'A' } });
    const v2 = (await rig.store.configs.get(rig.terminalId))!.version;
    await rig.fleet.recordConfigAck(rig.terminalId, {
      version: v1,
      status: 'applied',
      errors: [],
      appliedVersion: v1,
    });
    expect(await rig.fleet.getTerminalConfig(rig.terminalId)).toMatchObject({
      version: v2,
      status: 'pending',
      appliedVersion: v1,
    });
    await rig.fleet.recordConfigAck(rig.terminalId, {
      version: v2,
      status: 'rejected',
      errors: [{ path: '/display', message: 'no' }],
      appliedVersion: v1,
    });
    expect(await rig.fleet.getTerminalConfig(rig.terminalId)).toMatchObject({
      status: 'rejected',
      error: `terminal refused version ${v2}: /display no`,
    });
  });

  it('deactivate: said once, inside the transaction; a second time is a no-op; offline diagnostics are refused', async () => {
    const rig = await enrolledTerminal();
    await rig.fleet.deactivate(rig.terminalId, { reason: 'stolen' });
    await rig.fleet.deactivate(rig.terminalId, {});
    expect(rig.events.filter((e) => e.name === 'terminal.deactivated')).toEqual([
      { name: 'terminal.deactivated', payload: { terminalId: rig.terminalId, reason: 'stolen' } },
    ]);
    expect(await rig.fleet.getTerminal(rig.terminalId)).toMatchObject({
      status: 'deactivated',
      deactivationReason: 'stolen',
    });
    await expect(rig.fleet.runDiagnostics(rig.terminalId)).rejects.toMatchObject({
      code: 'terminal_offline',
    });
  });

  it('a rename tells the terminal (terminal.profile); a move re-layers and pushes its config', async () => {
    const rig = await enrolledTerminal();
    const other = await rig.fleet.createLocation({ name: 'Other' });
    await rig.fleet.updateTerminal(rig.terminalId, { name: 'Till 2' });
    expect(rig.events.at(-1)).toEqual({ name: 'terminal.profile', payload: { terminalId: rig.terminalId } });
    await rig.fleet.updateTerminal(rig.terminalId, { locationId: other.id });
    expect(rig.events.slice(-2).map((e) => e.name)).toEqual(['config.desired', 'terminal.profile']);
    expect(
      (
        await refusalOf(
          async () => await rig.fleet.updateTerminal(rig.terminalId, { locationId: 'loc_nope' }),
        )
      ).code,
    ).toBe('not_found');
  });
});
