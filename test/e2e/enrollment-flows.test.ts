import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localApiRequest } from '../../agent/local-api/local-api-client.js';
import {
  agentDirs,
  type Cloud,
  cli,
  httpsBinary,
  POSAGENT,
  start,
  startAgent,
  startCloud,
  waitForLink,
} from '../support/processes.js';
import { waitFor } from '../support/wait-for.js';

/** The four ways to enroll, each ending with a real agent Online; and their refusals. */
describe('enrollment flows', () => {
  let cloud: Cloud;
  let locationId: string;

  beforeAll(async () => {
    // Serial-only pre-registration (the unsafe mode) for the by-serial case; the factory-identity
    // flow is zero-touch.test.ts.
    cloud = await startCloud([
      '--heartbeat-interval',
      '1',
      '--pairing-ttl',
      '3',
      '--allow-serial-only-preregistration',
    ]);
    locationId = (await cloud.api<{ id: string }>('POST', '/v1/locations', { name: 'Store 7' })).body.id;
  });
  afterAll(async () => cloud.stop());

  const newCode = async () =>
    (
      await cloud.api<{ code: string; qrPayload: string }>('POST', '/v1/enrollment-codes', {
        locationId,
        terminalName: 'Till QR',
      })
    ).body;

  const enrollBySerial = (serial: string) =>
    cli([
      'enroll',
      '--auto',
      '--serial',
      serial,
      '--cloud',
      cloud.url,
      '--ca-file',
      cloud.caFile,
      '--json',
      ...agentDirs().flags,
    ]);

  const goesOnline = async (dirs: ReturnType<typeof agentDirs>) => {
    const agent = startAgent(dirs);
    try {
      await waitForLink(dirs);
    } finally {
      agent.child.kill('SIGTERM');
      await agent.exited;
    }
  };

  it('QR payload: enrolls without --cloud or --ca-file (the CA is checked by its fingerprint), then goes online', async () => {
    const { qrPayload } = await newCode();
    expect(qrPayload).toMatch(/^posagent:\/\/enroll\?cloud=https/);
    const dirs = agentDirs();
    const r = await cli(['enroll', '--qr', qrPayload, '--json', ...dirs.flags]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json()).toMatchObject({ name: 'Till QR', locationId });
    await goesOnline(dirs);
  });

  it('QR image: the PNG from the cloud is decoded and enrolls', async () => {
    const { code } = await newCode();
    const png = await httpsBinary(cloud, `/v1/enrollment-codes/${code}/qr.png`);
    expect(png.contentType).toBe('image/png');
    const dirs = agentDirs();
    const file = join(dirs.stateDir, '..', 'qr.png');
    writeFileSync(file, png.body);
    const r = await cli(['enroll', '--qr-image', file, '--json', ...dirs.flags]);
    expect(r.code, r.stderr).toBe(0);
    await goesOnline(dirs);
  });

  it('QR whose CA fingerprint does not match is refused before any key is made or sent; the code stays unused', async () => {
    const { code, qrPayload } = await newCode();
    const forged = qrPayload.replace(/ca=[0-9a-f]{64}/, `ca=${'ab'.repeat(32)}`);
    const dirs = agentDirs();
    const r = await cli(['enroll', '--qr', forged, '--json', ...dirs.flags]);
    expect(r.code).toBe(1);
    expect(r.json<{ error: { code: string; message: string } }>().error).toMatchObject({
      code: 'ca_fingerprint_mismatch',
    });
    expect(r.json<{ error: { message: string } }>().error.message).toMatch(/nothing was sent/);
    expect(existsSync(dirs.stateDir)).toBe(false);
    // The code was never presented: it still enrolls.
    const ok = await cli(['enroll', '--qr', qrPayload, '--json', ...dirs.flags]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(code).toMatch(/^[A-Z0-9]{4}-[A-Z0-9]{4}$/);
  });

  it('pairing: the waiting daemon and `status` show the code; a wrong code is 404 and changes nothing; an expired code is 410 and replaced; activation enrolls and the daemon goes online', async () => {
    const dirs = agentDirs();
    const daemon = startAgent(dirs); // not enrolled: it waits, serving its status
    try {
      await waitFor(
        async () =>
          (await cli(['status', '--json', ...dirs.flags])).json<{ daemon: string }>().daemon === 'running',
        'the waiting daemon',
      );
      const pair = start(POSAGENT, [
        'enroll',
        '--pair',
        '--cloud',
        cloud.url,
        '--ca-file',
        cloud.caFile,
        '--json',
        ...dirs.flags,
      ]);
      const shown = async () =>
        (
          await localApiRequest<{ pairing?: { code: string; expiresAt: string } }>(
            `${dirs.runtimeDir}/api.sock`,
            'GET',
            '/v1/status',
          )
        ).body.pairing;
      const first = await waitFor(shown, 'the pairing code in GET /v1/status');
      expect(first.code).toMatch(/^[A-Z0-9]{4}-[A-Z0-9]{4}$/);
      // the CLI shows it too
      expect(
        (await cli(['status', '--json', ...dirs.flags])).json<{ pairing?: { code: string } }>().pairing?.code,
      ).toBeDefined();

      const before = (
        await cloud.api<{ data: unknown[] }>('GET', `/v1/terminals?locationId=${locationId}&limit=100`)
      ).body.data.length;
      const wrong = await cloud.api<{ error: { code: string } }>('POST', '/v1/terminals/activate', {
        activationCode: 'ZZZZ-ZZZZ',
        locationId,
        name: 'Till P',
      });
      expect(wrong.status).toBe(404);
      expect(wrong.body.error.code).toBe('invalid_code');
      expect(
        (await cloud.api<{ data: unknown[] }>('GET', `/v1/terminals?locationId=${locationId}&limit=100`)).body
          .data.length,
      ).toBe(before);

      // Let the first code expire: activation is refused and the device shows a new code.
      await waitFor(() => Date.now() > Date.parse(first.expiresAt) + 100, 'the first code to expire');
      const expired = await cloud.api<{ error: { code: string } }>('POST', '/v1/terminals/activate', {
        activationCode: first.code,
        locationId,
      });
      expect(expired.status).toBe(410);
      expect(expired.body.error.code).toBe('code_expired');
      const activated = await waitFor(async () => {
        const now = await shown();
        if (!now || now.code === first.code) return undefined;
        const r = await cloud.api<{ id: string; name: string }>('POST', '/v1/terminals/activate', {
          activationCode: now.code,
          locationId,
          name: 'Till P',
        });
        return r.status === 201 ? r.body : undefined;
      }, 'activation of a fresh code');
      expect(activated.name).toBe('Till P');
      const done = await pair.exited;
      expect(done.code, pair.stderr()).toBe(0);
      expect(JSON.parse(pair.output())).toMatchObject({ terminalId: activated.id, name: 'Till P' });
      await waitForLink(dirs); // the same daemon process, now enrolled
    } finally {
      daemon.child.kill('SIGTERM');
      await daemon.exited;
    }
  });

  it('serial-only pre-registration (unsafe mode): the daemon with auto-enroll enrolls itself and goes online; unknown and claimed serials get the same refusal', async () => {
    const serial = `SN-${Date.now()}`;
    const pre = await cloud.api('POST', '/v1/preregistrations', {
      serialNumber: serial,
      locationId,
      name: 'Till A',
    });
    expect(pre.status).toBe(201);
    const dirs = agentDirs();
    const daemon = startAgent(dirs, [], {
      POSAGENT_AUTO_ENROLL: 'true',
      POSAGENT_CLOUD_URL: cloud.url,
      POSAGENT_FLEET_CA_FILE: cloud.caFile,
      POSAGENT_SERIAL_NUMBER: serial,
      POSAGENT_RECONNECT_BASE_MS: '100',
      POSAGENT_RECONNECT_CAP_MS: '1000',
    });
    try {
      await waitForLink(dirs);
      const s = (await cli(['status', '--json', ...dirs.flags])).json<{ name: string; locationId: string }>();
      expect(s).toMatchObject({ name: 'Till A', locationId });
    } finally {
      daemon.child.kill('SIGTERM');
      await daemon.exited;
    }

    const unknown = await enrollBySerial('SN-NOT-THERE');
    expect(unknown.code).toBe(1);
    const again = await enrollBySerial(serial);
    expect(again.code).toBe(1);
    const [u, a] = [unknown, again].map((r) => r.json<{ error: { code: string; message: string } }>().error);
    expect(u).toEqual(a);
    expect(u!.code).toBe('auto_enrollment_refused');
    expect(u!.message).not.toContain('SN-NOT-THERE');
    expect(cloud.proc.stderr()).toMatch(/already claimed/);
    const list = await cloud.api<{
      data: { serialNumber: string; refusedClaims: number; terminalId: string }[];
    }>('GET', '/v1/preregistrations');
    expect(list.body.data.find((p) => p.serialNumber === serial)).toMatchObject({ refusedClaims: 1 });
  });
});
