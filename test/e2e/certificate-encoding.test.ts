import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { buildCertificate, ext, OID, parseCertificate, subjectKeyIdentifierOf } from '../../protocol/x509.js';
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
  tempDir,
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
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const name = [{ type: OID.commonName, value: 'term_abc', printable: true }];
    const c = buildCertificate({
      subject: name,
      publicKey,
      signingKey: privateKey,
      serialHex: '01',
      notBefore: new Date(Math.floor(Date.now() / 1000) * 1000),
      notAfter: new Date(Math.floor(Date.now() / 1000) * 1000 + 86_400_000),
      extensions: [],
    });
    expect(strictX509Problems(c)).toEqual([
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
    const real = parseCertificate(certOf(a.dirs));
    const caCert = parseCertificate(ca);
    // Another key of the CA's own type: only the signature is wrong.
    const caType = createPublicKey(ca).asymmetricKeyType;
    const other =
      caType === 'ec'
        ? generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
        : generateKeyPairSync('rsa', { modulusLength: 2048 });
    const publicKey = createPublicKey(certOf(a.dirs));
    const cert = buildCertificate({
      subject: real.tbsCertificate.subject,
      issuer: caCert.tbsCertificate.subject,
      publicKey,
      signingKey: other.privateKey,
      serialHex: '0badbeef',
      notBefore: new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000),
      notAfter: new Date(Math.floor(Date.now() / 1000) * 1000 + 86_400_000),
      extensions: [
        ext.basicConstraints(false, undefined, false),
        ext.extKeyUsage('clientAuth'),
        ext.authorityKeyIdentifier(subjectKeyIdentifierOf(caCert)!),
      ],
    });

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

/**
 * Issue 23: a new cloud's fleet CA and server certificate are ECDSA P-256; the data dir of an
 * existing (RSA) fleet keeps its CA and server key as they are — its agents pin that CA — and
 * issues P-256 client certificates under it.
 */
describe('key types of the fleet CA and the server certificate', () => {
  const serverCertOf = (cloud: Cloud, ca: string) =>
    new Promise<string>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port: cloud.port, ca, servername: 'localhost' }, () => {
        const raw = s.getPeerCertificate().raw;
        s.end();
        resolve(`-----BEGIN CERTIFICATE-----\n${raw.toString('base64')}\n-----END CERTIFICATE-----\n`);
      });
      s.on('error', reject);
    });

  it('a new cloud: CA and server certificate on P-256; an enrolled agent gets a P-256 certificate', async () => {
    const cloud = await startCloud();
    try {
      const ca = readFileSync(cloud.caFile, 'utf8');
      for (const pem of [ca, await serverCertOf(cloud, ca)]) {
        const key = createPublicKey(pem);
        expect(key.asymmetricKeyType).toBe('ec');
        expect(key.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
      }
      const a = await enrollAgent(cloud);
      const key = createPublicKey(certOf(a.dirs));
      expect(key.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
      expect(strictX509Problems(certOf(a.dirs), ca)).toEqual([]);
    } finally {
      await cloud.stop();
    }
  });

  it('an existing RSA fleet: its CA file and server key stay as they were; agents enroll (P-256) and link under it', async () => {
    const dataDir = tempDir('rsa-cloud');
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const caKeys = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const name = [
      { type: OID.commonName, value: 'posagent fleet CA old-host' },
      { type: OID.organizationName, value: 'posagent fleet', printable: true },
    ];
    const second = Math.floor(Date.now() / 1000) * 1000;
    const caPem = buildCertificate({
      subject: name,
      publicKey: caKeys.publicKey,
      signingKey: caKeys.privateKey,
      serialHex: '0123456789abcdef',
      notBefore: new Date(second - 86_400_000),
      notAfter: new Date(second + 3650 * 86_400_000),
      extensions: [
        ext.basicConstraints(true),
        ext.keyUsage('ca-signing'),
        ext.subjectKeyIdentifier(caKeys.publicKey),
      ],
    });
    const serverKey = generateKeyPairSync('rsa', { modulusLength: 2048 })
      .privateKey.export({ type: 'pkcs8', format: 'pem' })
      .toString();
    writeFileSync(join(dataDir, 'ca.crt'), caPem, { mode: 0o644 });
    writeFileSync(join(dataDir, 'ca.key'), caKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }), {
      mode: 0o600,
    });
    writeFileSync(join(dataDir, 'server.key'), serverKey, { mode: 0o600 });
    const cloud = await startCloud([], dataDir);
    try {
      expect(readFileSync(cloud.caFile, 'utf8')).toBe(caPem);
      expect(readFileSync(join(dataDir, 'server.key'), 'utf8')).toBe(serverKey);
      const server = await serverCertOf(cloud, caPem);
      expect(createPublicKey(server).asymmetricKeyType).toBe('rsa');
      expect(strictX509Problems(server, caPem)).toEqual([]);
      const a = await enrollAgent(cloud);
      expect(createPublicKey(certOf(a.dirs)).asymmetricKeyType).toBe('ec');
      expect(strictX509Problems(certOf(a.dirs), caPem)).toEqual([]);
      const agent = startAgent(a.dirs);
      try {
        await waitForLink(a.dirs);
      } finally {
        agent.child.kill('SIGTERM');
        await agent.exited;
      }
    } finally {
      await cloud.stop();
    }
  });
});
