import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type FactoryIdentityFiles,
  type ManufacturerCa,
  newFactoryIdentity,
  newManufacturerCa,
} from '../../harness/factory-identity.js';
import { systemInformationOf } from '../../identity/hardware-serial.js';
import { agentDirs, type Cloud, cli, startAgent, startCloud, waitForLink } from '../support/processes.js';

/**
 * Issue 16: zero-touch enrollment proves a factory identity, through the shipped bundle
 * (dist/bin/posagent.js) — never a serial alone; every refusal is one answer, so serials cannot
 * be probed; the terminal shows the model and serial the device reports.
 */
describe('zero-touch enrollment with a factory identity', () => {
  let cloud: Cloud;
  let locationId: string;
  let maker: ManufacturerCa;
  let makerId: string;
  const REFUSED = 'auto_enrollment_refused';

  beforeAll(async () => {
    cloud = await startCloud(['--heartbeat-interval', '1']);
    locationId = (await cloud.api<{ id: string }>('POST', '/v1/locations', { name: 'Store 9' })).body.id;
    maker = newManufacturerCa();
    const r = await cloud.api<{ id: string; fingerprint: string }>('POST', '/v1/manufacturer-cas', {
      name: 'Acme Terminals',
      certificate: maker.certificatePem,
    });
    expect(r.status).toBe(201);
    makerId = r.body.id;
  });
  afterAll(async () => cloud.stop());

  const auto = (factory: FactoryIdentityFiles | null, extra: string[] = [], dirs = agentDirs()) =>
    cli([
      'enroll',
      '--auto',
      '--cloud',
      cloud.url,
      '--ca-file',
      cloud.caFile,
      '--json',
      ...(factory ? ['--factory-key', factory.keyFile, '--factory-cert', factory.certFile] : []),
      ...extra,
      ...dirs.flags,
    ]);
  const terminals = async () =>
    (
      await cloud.api<{ data: { id: string; model: string | null; serialNumber: string | null }[] }>(
        'GET',
        '/v1/terminals?limit=100',
      )
    ).body.data;

  it('without a serial anywhere, the bundle says which setting to give (the hardware is read, not crashed on)', async () => {
    const r = await auto(null);
    expect(`${r.stdout}${r.stderr}`).not.toMatch(/is not a function/);
    const error = r.json<{ error: { code: string; message: string; hint?: string } }>().error;
    // This machine has no DMI serial; one that has gets as far as the cloud, which refuses it.
    if (error.code === 'no_serial') {
      expect(r.code).toBe(1);
      expect(`${error.message} ${error.hint}`).toMatch(/--serial/);
      expect(`${error.hint}`).toMatch(/serialNumber/);
    } else expect(error.code).toBe(REFUSED);
  });

  it('a factory certificate from a registered manufacturer CA enrolls the device; the terminal shows its model and serial', async () => {
    const serial = `SN-MCA-${Date.now()}`;
    const pre = await cloud.api('POST', '/v1/preregistrations', {
      serialNumber: serial,
      locationId,
      name: 'Till Z1',
      manufacturerCaId: makerId,
    });
    expect(pre.status).toBe(201);
    expect(pre.body).toMatchObject({ attestation: 'manufacturer_ca', manufacturerCaId: makerId });
    const factory = newFactoryIdentity(serial, maker);
    const dirs = agentDirs();
    // No --serial: the serial is the one the factory certificate names.
    const r = await auto(factory, [], dirs);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const enrolled = r.json<{ terminalId: string; name: string }>();
    expect(enrolled.name).toBe('Till Z1');
    const agent = startAgent(dirs);
    try {
      await waitForLink(dirs);
      const si = systemInformationOf(await import('systeminformation'));
      const hardwareModel = (await si.system()).model.trim();
      const t = (
        await cloud.api<{ model: string | null; serialNumber: string }>(
          'GET',
          `/v1/terminals/${enrolled.terminalId}`,
        )
      ).body;
      expect(t.serialNumber).toBe(serial);
      expect(t.model).toBe(hardwareModel || null);
    } finally {
      agent.child.kill('SIGTERM');
      await agent.exited;
    }
  });

  it('a pre-registration by the device public key: the daemon with autoEnroll enrolls itself (bundle) and reports a set model', async () => {
    const serial = `SN-KEY-${Date.now()}`;
    const factory = newFactoryIdentity(serial); // self-signed: the key is what is trusted
    const pre = await cloud.api('POST', '/v1/preregistrations', {
      serialNumber: serial,
      locationId,
      name: 'Till Z2',
      devicePublicKey: factory.publicKeyPem,
    });
    expect(pre.status).toBe(201);
    const dirs = agentDirs();
    const daemon = startAgent(dirs, [], {
      POSAGENT_AUTO_ENROLL: 'true',
      POSAGENT_CLOUD_URL: cloud.url,
      POSAGENT_FLEET_CA_FILE: cloud.caFile,
      POSAGENT_FACTORY_KEY_FILE: factory.keyFile,
      POSAGENT_FACTORY_CERT_FILE: factory.certFile,
      POSAGENT_MODEL: 'nexgo_n92',
      POSAGENT_RECONNECT_BASE_MS: '100',
      POSAGENT_RECONNECT_CAP_MS: '1000',
    });
    try {
      await waitForLink(dirs);
      const s = (await cli(['status', '--json', ...dirs.flags])).json<{ terminalId: string; name: string }>();
      expect(s.name).toBe('Till Z2');
      const t = (
        await cloud.api<{ model: string; serialNumber: string }>('GET', `/v1/terminals/${s.terminalId}`)
      ).body;
      expect(t).toMatchObject({ model: 'nexgo_n92', serialNumber: serial });
      expect(daemon.output()).not.toContain('PRIVATE KEY');
    } finally {
      daemon.child.kill('SIGTERM');
      await daemon.exited;
    }
  });

  it('unknown, claimed, unproven and wrongly proven serials get one refusal; nothing is created; the right proof re-enrolls the same terminal', async () => {
    const serial = `SN-REF-${Date.now()}`;
    await cloud.api('POST', '/v1/preregistrations', {
      serialNumber: serial,
      locationId,
      manufacturerCaId: makerId,
    });
    const factory = newFactoryIdentity(serial, maker);
    const before = (await terminals()).length;
    const outcomes: { case: string; code: number | null; error: { code: string; message: string } }[] = [];
    const attempt = async (label: string, f: FactoryIdentityFiles | null, extra: string[] = []) => {
      const r = await auto(f, extra);
      outcomes.push({
        case: label,
        code: r.code,
        error: r.json<{ error: { code: string; message: string } }>().error,
      });
    };
    // Unknown serial, with a genuine factory identity of its own.
    const stranger = `SN-UNKNOWN-${Date.now()}`;
    await attempt('unknown serial', newFactoryIdentity(stranger, maker));
    // Pre-registered, but no proof at all.
    await attempt('no proof', null, ['--serial', serial]);
    // Pre-registered, proven with another device's factory identity (same manufacturer).
    await attempt('another device', newFactoryIdentity(`SN-OTHER-${Date.now()}`, maker), [
      '--serial',
      serial,
    ]);
    // Pre-registered, a certificate naming the serial but from a CA the cloud does not trust.
    await attempt('untrusted CA', newFactoryIdentity(serial, newManufacturerCa('Rogue CA')));
    expect((await terminals()).length).toBe(before);

    const first = await auto(factory);
    expect(first.code, first.stdout).toBe(0);
    const terminalId = first.json<{ terminalId: string }>().terminalId;
    // Claimed: without proof, refused like the rest.
    await attempt('claimed, no proof', null, ['--serial', serial]);
    for (const o of outcomes) {
      expect(o.code, o.case).toBe(1);
      expect(o.error.code, o.case).toBe(REFUSED);
      expect(o.error.message, o.case).toBe(outcomes[0]!.error.message);
    }
    expect(outcomes[0]!.error.message).not.toContain(stranger);
    // The same device again (factory reset): the same terminal, a new certificate.
    const again = await auto(factory);
    expect(again.code, again.stdout).toBe(0);
    expect(again.json<{ terminalId: string }>().terminalId).toBe(terminalId);
    expect((await terminals()).length).toBe(before + 1);
    const log = cloud.proc.stderr();
    expect(log).toMatch(/not pre-registered/);
    expect(log).toMatch(/not issued by the manufacturer CA/);
  });

  it('a serial-only pre-registration is refused unless the cloud is started with --allow-serial-only-preregistration', async () => {
    const r = await cloud.api<{ error: { code: string; message: string } }>('POST', '/v1/preregistrations', {
      serialNumber: `SN-BARE-${Date.now()}`,
      locationId,
    });
    expect(r.status).toBe(422);
    expect(r.body.error.code).toBe('attestation_required');
    expect(r.body.error.message).toMatch(/--allow-serial-only-preregistration/);
    const list = await cloud.api<{ data: { serialNumber: string }[] }>('GET', '/v1/preregistrations');
    expect(list.body.data.some((p) => p.serialNumber.startsWith('SN-BARE-'))).toBe(false);
  });

  it('a chain through an intermediate that allows no CA below it (pathLen 0) is refused; one within its path length enrolls', async () => {
    const int0 = newManufacturerCa('Acme Line 1 (pathlen 0)', maker, 0);
    const int1 = newManufacturerCa('Acme Line 1 Station 3', int0);
    const tooDeep = `SN-DEEP-${Date.now()}`;
    await cloud.api('POST', '/v1/preregistrations', {
      serialNumber: tooDeep,
      locationId,
      manufacturerCaId: makerId,
    });
    const deep = await auto(newFactoryIdentity(tooDeep, int1));
    expect(deep.code).toBe(1);
    expect(deep.json<{ error: { code: string } }>().error.code).toBe(REFUSED);
    expect(cloud.proc.stderr()).toMatch(/allows 0 CA\(s\) below it, the chain has 1/);
    const fine = `SN-INT-${Date.now()}`;
    await cloud.api('POST', '/v1/preregistrations', {
      serialNumber: fine,
      locationId,
      manufacturerCaId: makerId,
    });
    const ok = await auto(newFactoryIdentity(fine, int0));
    expect(ok.code, ok.stdout).toBe(0);
  });

  it('a serial only claimed with a code is not recorded when it is pre-registered or another terminal has it', async () => {
    const serial = `SN-CLAIM-${Date.now()}`;
    await cloud.api('POST', '/v1/preregistrations', {
      serialNumber: serial,
      locationId,
      manufacturerCaId: makerId,
    });
    const code = await cloud.api<{ code: string }>('POST', '/v1/enrollment-codes', {
      locationId,
      terminalName: 'Till C',
    });
    const dirs = agentDirs();
    const r = await cli([
      'enroll',
      '--cloud',
      cloud.url,
      '--ca-file',
      cloud.caFile,
      '--code',
      code.body.code,
      '--serial',
      serial,
      '--json',
      ...dirs.flags,
    ]);
    expect(r.code, r.stdout).toBe(0);
    const t = await cloud.api<{ serialNumber: string | null }>(
      'GET',
      `/v1/terminals/${r.json<{ terminalId: string }>().terminalId}`,
    );
    expect(t.body.serialNumber).toBeNull();
    expect(cloud.proc.stderr()).toMatch(/claims a serial that is pre-registered or in use; not recorded/);
  });

  it('names with control characters (terminal escape sequences) are refused', async () => {
    const r = await cloud.api<{ error: { code: string; message: string } }>('POST', '/v1/enrollment-codes', {
      locationId,
      terminalName: 'Till \u001b]0;owned\u0007\u001b[2J',
    });
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.status).toBeLessThan(500);
    expect(JSON.stringify(r.body)).toMatch(/terminalName/);
  });
});
