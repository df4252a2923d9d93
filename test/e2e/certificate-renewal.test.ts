import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { localApiRequest } from '../../agent/local-api/local-api-client.js';
import { installIdentity } from '../../identity/identity-store.js';
import type { EnrollResponse } from '../../protocol/enrollment.js';
import { ENROLL_PATH } from '../../protocol/version.js';
import { rsaCsr } from '../support/csrs.js';
import {
  agentDirs,
  type Cloud,
  cli,
  enrollAgent,
  FAST_RECONNECT,
  newEnrollmentCode,
  restartCloud,
  startAgent,
  startCloud,
  waitForLink,
} from '../support/processes.js';
import { waitFor } from '../support/wait-for.js';

interface CertDoc {
  fingerprint: string;
  notAfter: string;
  renewal?: { lastRenewedAt: string | null };
  via?: string;
}

/** Tries the agent link with a given certificate; resolves with the refusal's error code, or 'open'. */
function tryLink(cloud: Cloud, cert: string, key: string): Promise<string> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${cloud.url.replace('https', 'wss')}/v1/agent`, 'posagent.v1', {
      ca: readFileSync(cloud.caFile, 'utf8'),
      cert,
      key,
    });
    ws.on('open', () => {
      ws.close();
      resolve('open');
    });
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c));
      res.on('end', () => resolve((JSON.parse(body) as { error: { code: string } }).error.code));
    });
    ws.on('error', (err) => resolve(`error: ${err.message}`));
  });
}

const certOf = async (flags: string[]) => (await cli(['cert', '--json', ...flags])).json<CertDoc>();

describe('certificate renewal', () => {
  let cloud: Cloud;
  beforeAll(async () => {
    // 1-day certificates issued as if 14 h ago: each arrives with 10 h left — under half its life,
    // so due at once by the 30-day rule (capped at half the life), but not under a third, so not due
    // with renewBeforeDays 0. A fresh one is not due at all: see the last test.
    cloud = await startCloud(['--cert-days', '1', '--heartbeat-interval', '1', '--cert-issued-ago', '50400']);
  });
  afterAll(async () => cloud.stop());

  it('renews by itself when due: new key, the link comes back with it, the old certificate is refused afterwards', async () => {
    const a = await enrollAgent(cloud);
    const idPaths = {
      key: `${a.dirs.stateDir}/keys/client.key`,
      cert: `${a.dirs.stateDir}/certs/client.crt`,
    };
    const oldKey = readFileSync(idPaths.key, 'utf8');
    const oldCert = readFileSync(idPaths.cert, 'utf8');
    const before = await certOf(a.dirs.flags);
    expect(before).toMatchObject({ fingerprint: expect.stringMatching(/^[0-9a-f]{64}$/), daysLeft: 0 });
    const agent = startAgent(a.dirs, [], { ...FAST_RECONNECT, POSAGENT_CERT_CHECK_INTERVAL_SEC: '1' });
    try {
      const renewed = await waitFor(async () => {
        const c = await certOf(a.dirs.flags);
        return c.renewal?.lastRenewedAt && c.fingerprint !== before.fingerprint ? c : undefined;
      }, 'a renewal');
      expect(renewed.fingerprint).not.toBe(before.fingerprint);
      expect(readFileSync(idPaths.key, 'utf8')).not.toBe(oldKey); // a new key, not a re-signed old one
      await waitForLink(a.dirs);
      expect(
        await waitFor(
          async () =>
            (await tryLink(cloud, oldCert, oldKey)) === 'certificate_superseded' ? 'refused' : undefined,
          'the old certificate refused',
        ),
      ).toBe('refused');
      expect(agent.output()).toMatch(/certificate renewed with a new key/);
      expect(agent.output()).not.toContain('PRIVATE KEY');
    } finally {
      agent.child.kill('SIGTERM');
      await agent.exited;
    }
  });

  it('an RSA identity enrolled before P-256 keeps its link and moves to a P-256 key (0600) at its next renewal', async () => {
    // Enrolled the way main did it: an RSA-2048 key made on the device, its CSR sent with a code,
    // the answer installed by the agent's own identity store.
    const { code } = await newEnrollmentCode(cloud);
    const { csr, keyPem } = rsaCsr(2048);
    const enrolled = await cloud.api<EnrollResponse>(
      'POST',
      ENROLL_PATH,
      { method: 'code', code, csr },
      null,
    );
    expect(enrolled.status, JSON.stringify(enrolled.body)).toBe(200);
    const dirs = agentDirs();
    await installIdentity(dirs.stateDir, {
      keyPem,
      certificatePem: enrolled.body.certificate,
      fleetCaPem: enrolled.body.fleetCa,
      dataPublicKeyPem: enrolled.body.dataPublicKey,
      meta: {
        terminalId: enrolled.body.terminalId,
        locationId: enrolled.body.locationId,
        name: enrolled.body.name,
        cloudUrl: cloud.url,
        enrolledAt: new Date().toISOString(),
        method: 'code',
      },
    });
    const keyFile = `${dirs.stateDir}/keys/client.key`;
    expect(createPublicKey(enrolled.body.certificate).asymmetricKeyType).toBe('rsa');
    expect(await tryLink(cloud, enrolled.body.certificate, keyPem)).toBe('open');
    const before = (await certOf(dirs.flags)).fingerprint;

    const agent = startAgent(dirs, [], { ...FAST_RECONNECT, POSAGENT_CERT_CHECK_INTERVAL_SEC: '1' });
    try {
      await waitFor(async () => {
        const c = await certOf(dirs.flags);
        return c.renewal?.lastRenewedAt && c.fingerprint !== before ? c : undefined;
      }, 'the renewal of the RSA identity');
      await waitForLink(dirs);
      const key = createPrivateKey(readFileSync(keyFile, 'utf8'));
      expect(key.asymmetricKeyType).toBe('ec');
      expect(key.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
      expect(statSync(keyFile).mode & 0o777).toBe(0o600);
      const cert = readFileSync(`${dirs.stateDir}/certs/client.crt`, 'utf8');
      expect(createPublicKey(cert).asymmetricKeyType).toBe('ec');
      expect(new X509Certificate(cert).subject).toBe(`CN=${enrolled.body.terminalId}`);
      const view = (
        await cloud.api<{ status: string; statusReason: string | null }>(
          'GET',
          `/v1/terminals/${enrolled.body.terminalId}`,
        )
      ).body;
      expect(view, JSON.stringify(view)).toMatchObject({ status: 'online' });
      // The old RSA pair is superseded.
      expect(
        await waitFor(
          async () =>
            (await tryLink(cloud, enrolled.body.certificate, keyPem)) === 'certificate_superseded'
              ? 'refused'
              : undefined,
          'the RSA certificate refused',
        ),
      ).toBe('refused');
      expect(agent.output()).not.toContain('PRIVATE KEY');
    } finally {
      agent.child.kill('SIGTERM');
      await agent.exited;
    }
  });

  it.each([
    ['renewal-received', 'none', 'old'],
    ['renewal-staged', 'discarded', 'old'],
    ['renewal-committed', 'completed', 'new'],
    ['renewal-renaming', 'completed', 'new'],
  ] as const)(
    'kill -9 at %s leaves a working identity (recovery: %s, identity: %s)',
    async (point, recovery, which) => {
      const a = await enrollAgent(cloud);
      const oldFp = (await certOf(a.dirs.flags)).fingerprint;
      const dying = startAgent(a.dirs, [], {
        ...FAST_RECONNECT,
        POSAGENT_CERT_CHECK_INTERVAL_SEC: '1',
        POSAGENT_CRASH_POINT: point,
      });
      const end = await dying.exited;
      expect(end.signal).toBe('SIGKILL');
      // Restarted without the crash point and with renewal not due, so what it runs is what recovery left.
      const agent = startAgent(a.dirs, [], { ...FAST_RECONNECT, POSAGENT_RENEW_BEFORE_DAYS: '0' });
      try {
        await waitForLink(a.dirs);
        const logs = agent.output();
        if (recovery === 'none') expect(logs).not.toMatch(/"recovered"/);
        else expect(logs).toContain(`"recovered":"${recovery}"`);
        const now = (await certOf(a.dirs.flags)).fingerprint;
        if (which === 'old') expect(now).toBe(oldFp);
        else expect(now).not.toBe(oldFp);
        const status = (await cloud.api<{ status: string }>('GET', `/v1/terminals/${a.terminalId}`)).body
          .status;
        expect(status).toBe('online');
      } finally {
        agent.child.kill('SIGTERM');
        await agent.exited;
      }
    },
  );

  it('`cert --renew` renews through the daemon when it runs and directly when it does not; `reprovision` keeps the terminal', async () => {
    const a = await enrollAgent(cloud);
    const env = { ...FAST_RECONNECT, POSAGENT_RENEW_BEFORE_DAYS: '0' };
    const first = (await certOf(a.dirs.flags)).fingerprint;
    let agent = startAgent(a.dirs, [], env);
    await waitForLink(a.dirs);
    const viaDaemon = await cli(['cert', '--renew', '--json', ...a.dirs.flags]);
    expect(viaDaemon.code, viaDaemon.stdout).toBe(0);
    expect(viaDaemon.json<CertDoc>()).toMatchObject({ via: 'daemon', previous: { fingerprint: first } });
    expect(viaDaemon.json<CertDoc>().fingerprint).not.toBe(first);
    await waitForLink(a.dirs);
    agent.child.kill('SIGTERM');
    await agent.exited;

    const direct = await cli(['cert', '--renew', '--json', ...a.dirs.flags]);
    expect(direct.code, direct.stdout).toBe(0);
    expect(direct.json<CertDoc>().via).toBe('direct');
    const re = await cli(['reprovision', '--json', ...a.dirs.flags]);
    expect(re.code, re.stdout).toBe(0);
    expect(re.json()).toMatchObject({ terminalId: a.terminalId, via: 'direct' });
    agent = startAgent(a.dirs, [], env);
    try {
      await waitForLink(a.dirs);
      expect((await cli(['status', '--json', ...a.dirs.flags])).json()).toMatchObject({
        terminalId: a.terminalId,
      });
    } finally {
      agent.child.kill('SIGTERM');
      await agent.exited;
    }
    const human = await cli(['cert', ...a.dirs.flags]);
    expect(human.stdout).toMatch(/Fingerprint: +[0-9a-f]{64} \(SHA-256\)/);
  });

  it('renewals asked for while the link reconnects fail with a reason, and do not stop the next automatic one (issue 16)', async () => {
    // A cloud of its own: it is stopped while the agent runs.
    let own = await startCloud(['--cert-days', '1', '--cert-issued-ago', '50400']);
    const a = await enrollAgent(own);
    const before = (await certOf(a.dirs.flags)).fingerprint;
    await own.stop();
    const agent = startAgent(a.dirs, [], { ...FAST_RECONNECT, POSAGENT_CERT_CHECK_INTERVAL_SEC: '1' });
    const socket = `${a.dirs.runtimeDir}/api.sock`;
    try {
      await waitFor(async () => {
        const r = await localApiRequest<{ link: { state: string } }>(socket, 'GET', '/v1/status').catch(
          () => null,
        );
        return r && r.body.link.state !== 'online' ? true : undefined;
      }, 'the daemon up, its link not online');
      for (let i = 0; i < 5; i++) {
        const r = await localApiRequest<{ error: { code: string; message: string } }>(
          socket,
          'POST',
          '/v1/certificate/renew',
        );
        expect(r.status).toBe(503);
        expect(r.body.error.code).toBe('renewal_failed');
        expect(r.body.error.message).toMatch(/not online/);
      }
      const status = (
        await localApiRequest<{
          certificate: {
            renewal: { state: string; lastError: string; lastErrorAt: string; nextAttemptAt: string };
          };
        }>(socket, 'GET', '/v1/status')
      ).body;
      expect(status.certificate.renewal).toMatchObject({
        state: 'failed',
        lastError: expect.stringMatching(/not online/),
        lastErrorAt: expect.any(String),
        nextAttemptAt: expect.any(String),
      });
      // The cloud comes back: the renewal that is due goes through by itself, without a restart.
      own = await restartCloud(own);
      const renewed = await waitFor(async () => {
        const c = await certOf(a.dirs.flags);
        return c.fingerprint !== before && c.renewal?.lastRenewedAt ? c : undefined;
      }, 'an automatic renewal after the link came back');
      expect(renewed.renewal).toMatchObject({ lastError: null, lastErrorAt: null });
      expect(agent.child.exitCode).toBeNull();
      await waitForLink(a.dirs);
    } finally {
      agent.child.kill('SIGTERM');
      await agent.exited;
      await own.stop();
    }
  });

  it('certificates shorter than renewBeforeDays are not renewed on every link (10-day certificates)', async () => {
    const short = await startCloud(['--cert-days', '10', '--heartbeat-interval', '1']);
    const a = await enrollAgent(short);
    const before = (await certOf(a.dirs.flags)).fingerprint;
    const agent = startAgent(a.dirs, [], { ...FAST_RECONNECT, POSAGENT_CERT_CHECK_INTERVAL_SEC: '1' });
    try {
      await waitForLink(a.dirs);
      // Five more heartbeats (and renewal checks, one a second) later: the same certificate.
      const seen = async () =>
        (await short.api<{ lastSeen: number | null }>('GET', `/v1/terminals/${a.terminalId}`)).body
          .lastSeen ?? 0;
      const first = await waitFor(async () => (await seen()) || undefined, 'a first heartbeat');
      await waitFor(async () => ((await seen()) >= first + 5 ? true : undefined), 'five more heartbeats');
      const after = await certOf(a.dirs.flags);
      expect(after.fingerprint).toBe(before);
      expect(after.renewal?.lastRenewedAt ?? null).toBeNull();
      expect(agent.output()).not.toMatch(/certificate renewed/);
    } finally {
      agent.child.kill('SIGTERM');
      await agent.exited;
      await short.stop();
    }
  });
});
