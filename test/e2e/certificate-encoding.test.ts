import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { connect } from 'node:tls';
import forge from 'node-forge';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { rsaCsr } from '../support/csrs.js';
import {
  type AgentDirs,
  agentDirs,
  type Cloud,
  cli,
  enrollAgent,
  enrollWithCli,
  FAST_RECONNECT,
  startAgent,
  startCloud,
  waitForLink,
} from '../support/processes.js';
import { strictX509Problems } from '../support/strict-x509.js';
import { waitFor } from '../support/wait-for.js';

const certOf = (dirs: AgentDirs) => readFileSync(join(dirs.stateDir, 'certs/client.crt'), 'utf8');

/**
 * Issue 17.9: every certificate the cloud issues loads in a strict X.509 parser (names are
 * UTF8String: a PrintableString may not hold the `_` of `term_…`), and a client certificate that
 * names the fleet CA as issuer but was signed with another key gets the same logged 403 every
 * time, on TLS 1.2 and 1.3, on the link and on the agent's HTTPS routes.
 */
describe('certificates a strict parser accepts', () => {
  let cloud: Cloud;
  let ca: string;
  beforeAll(async () => {
    cloud = await startCloud(['--heartbeat-interval', '1']);
    ca = readFileSync(cloud.caFile, 'utf8');
  });
  afterAll(() => cloud?.stop());

  it('the checker itself refuses what main issued: a PrintableString holding "_"', () => {
    const keys = forge.pki.rsa.generateKeyPair(1024);
    const c = forge.pki.createCertificate();
    c.publicKey = keys.publicKey;
    c.serialNumber = '01';
    c.validity.notBefore = new Date();
    c.validity.notAfter = new Date(Date.now() + 86_400_000);
    c.setSubject([{ name: 'commonName', value: 'term_abc' }]); // forge's default: PrintableString
    c.setIssuer([{ name: 'commonName', value: 'term_abc' }]);
    c.sign(keys.privateKey, forge.md.sha256.create());
    expect(strictX509Problems(forge.pki.certificateToPem(c))).toEqual([
      'subject 2.5.4.3: PrintableString "term_abc" has characters outside its set',
      'issuer 2.5.4.3: PrintableString "term_abc" has characters outside its set',
    ]);
  });

  it('the fleet CA and the server certificate pass', async () => {
    expect(strictX509Problems(ca, ca)).toEqual([]);
    const serverPem = await new Promise<string>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port: cloud.port, ca, servername: 'localhost' }, () => {
        const raw = s.getPeerCertificate().raw;
        s.end();
        resolve(`-----BEGIN CERTIFICATE-----\n${raw.toString('base64')}\n-----END CERTIFICATE-----\n`);
      });
      s.on('error', reject);
    });
    expect(strictX509Problems(serverPem, ca)).toEqual([]);
  });

  it('enrolled, renewed (over the link and over HTTPS), paired and replaced certificates all pass', async () => {
    const issued: [string, string][] = [];
    const a = await enrollAgent(cloud);
    issued.push(['enrolled with a code', certOf(a.dirs)]);

    const env = { ...FAST_RECONNECT, POSAGENT_RENEW_BEFORE_DAYS: '0' };
    const agent = startAgent(a.dirs, [], env);
    try {
      await waitForLink(a.dirs);
      const viaLink = await cli(['cert', '--renew', '--json', ...a.dirs.flags]);
      expect(viaLink.code, viaLink.stdout).toBe(0);
      issued.push(['renewed over the link', certOf(a.dirs)]);
      await waitForLink(a.dirs);
    } finally {
      agent.child.kill('SIGTERM');
      await agent.exited;
    }
    const direct = await cli(['cert', '--renew', '--json', ...a.dirs.flags]);
    expect(direct.code, direct.stdout).toBe(0);
    issued.push(['renewed over HTTPS', certOf(a.dirs)]);

    const { csr } = rsaCsr();
    const pairing = await cloud.api<{ pairingId: string; pairingSecret: string; activationCode: string }>(
      'POST',
      '/v1/pairings',
      { csr },
      null,
    );
    expect(pairing.status).toBe(201);
    expect(
      (
        await cloud.api('POST', '/v1/terminals/activate?wait=0', {
          activationCode: pairing.body.activationCode,
          locationId: a.locationId,
        })
      ).status,
    ).toBe(201);
    const polled = await cloud.api<{ enrollment: { certificate: string } }>(
      'POST',
      `/v1/pairings/${pairing.body.pairingId}/poll`,
      { pairingSecret: pairing.body.pairingSecret },
      null,
    );
    issued.push(['paired', polled.body.enrollment.certificate]);

    const replacement = await cloud.api<{ code: string }>(
      'POST',
      `/v1/terminals/${a.terminalId}/replace`,
      {},
    );
    expect(replacement.status).toBe(201);
    const b = agentDirs();
    const r = await enrollWithCli(cloud, replacement.body.code, b);
    expect(r.code, r.stdout).toBe(0);
    issued.push(['replacing another terminal', certOf(b)]);

    expect(new Set(issued.map(([, pem]) => pem)).size).toBe(issued.length);
    for (const [how, pem] of issued) expect(strictX509Problems(pem, ca), how).toEqual([]);
    // The terminal id is in the subject, as UTF8String.
    expect(new (await import('node:crypto')).X509Certificate(issued[0]![1]).subject).toBe(
      `CN=${a.terminalId}`,
    );
  });

  it('a certificate naming the fleet CA as issuer but signed with another key: the same logged 403, every time, TLS 1.2 and 1.3, link and HTTPS', async () => {
    const a = await enrollAgent(cloud);
    const key = readFileSync(join(a.dirs.stateDir, 'keys/client.key'), 'utf8');
    const real = forge.pki.certificateFromPem(certOf(a.dirs));
    const caCert = forge.pki.certificateFromPem(ca);
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const c = forge.pki.createCertificate();
    c.publicKey = real.publicKey;
    c.serialNumber = '0badbeef';
    c.validity.notBefore = new Date(Date.now() - 60_000);
    c.validity.notAfter = new Date(Date.now() + 86_400_000);
    c.setSubject(real.subject.attributes);
    c.setIssuer(caCert.subject.attributes);
    c.setExtensions([
      { name: 'basicConstraints', cA: false },
      { name: 'extKeyUsage', clientAuth: true },
      { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
    ]);
    c.sign(
      forge.pki.privateKeyFromPem(other.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()),
      forge.md.sha256.create(),
    );
    const cert = forge.pki.certificateToPem(c);

    const link = (maxVersion: 'TLSv1.2' | 'TLSv1.3') =>
      new Promise<string>((resolve) => {
        const ws = new WebSocket(`${cloud.url.replace('https', 'wss')}/v1/agent`, 'posagent.v1', {
          ca,
          key,
          cert,
          maxVersion,
        });
        ws.on('open', () => {
          ws.close();
          resolve('open');
        });
        ws.on('unexpected-response', (_req, res) => {
          let body = '';
          res.on('data', (d: Buffer) => {
            body += d.toString();
          });
          res.on('end', () => resolve(`${res.statusCode} ${JSON.parse(body).error.code}`));
        });
        ws.on('error', (e: NodeJS.ErrnoException) => resolve(`error ${e.code ?? e.message}`));
      });
    const https = (maxVersion: 'TLSv1.2' | 'TLSv1.3') =>
      new Promise<string>((resolve) => {
        const req = request(
          new URL('/v1/agent/certificate', cloud.url),
          {
            method: 'POST',
            ca,
            key,
            cert,
            maxVersion,
            agent: false,
            headers: { 'content-type': 'application/json' },
          },
          (res) => {
            let body = '';
            res.on('data', (d: Buffer) => {
              body += d.toString();
            });
            res.on('end', () => resolve(`${res.statusCode} ${JSON.parse(body).error.code}`));
          },
        );
        req.on('error', (e: NodeJS.ErrnoException) => resolve(`error ${e.code ?? e.message}`));
        req.end('{"csr":"x"}');
      });
    const logsBefore = cloud.proc.stderr().length;
    const answers: Record<string, number> = {};
    const rounds = 20;
    for (let i = 0; i < rounds; i++) {
      for (const v of ['TLSv1.2', 'TLSv1.3'] as const) {
        for (const [route, answer] of [
          ['link', await link(v)],
          ['https', await https(v)],
        ]) {
          const k = `${route} ${v}: ${answer}`;
          answers[k] = (answers[k] ?? 0) + 1;
        }
      }
    }
    expect(answers).toEqual({
      'link TLSv1.2: 403 client_certificate_rejected': rounds,
      'link TLSv1.3: 403 client_certificate_rejected': rounds,
      'https TLSv1.2: 403 client_certificate_rejected': rounds,
      'https TLSv1.3: 403 client_certificate_rejected': rounds,
    });
    const logged = await waitFor(() => {
      const lines = cloud.proc
        .stderr()
        .slice(logsBefore)
        .split('\n')
        .filter((l) => l.includes('client_certificate_rejected'));
      return lines.length >= 4 * rounds ? lines : undefined;
    }, 'a log line per refusal');
    expect(logged).toHaveLength(4 * rounds);
    expect(logged[0]).toMatch(/signature does not verify with the CA's key/);
  });
});
