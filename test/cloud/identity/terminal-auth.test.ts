import { generateKeyPairSync, type KeyObject, X509Certificate } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { connect, createServer, type Server, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TLS_SERVER_POLICY } from '../../../cloud/api/tls-policy.js';
import { FleetCa } from '../../../cloud/identity/fleet-ca.js';
import { type PeerVerdict, peerVerdict, verifyPeer } from '../../../cloud/identity/terminal-auth.js';
import { buildCertificate, buildCsr, ext, keyIdentifier, OID } from '../../../protocol/x509.js';

/**
 * verifyPeer over real TLS on loopback: the cloud's server options (its fleet CA the only `ca`,
 * client certificates asked for, not required, session tickets), each connection's verdict taken
 * at `secureConnection` at a clock the test sets. A chain OpenSSL verified (a full handshake, or a
 * session resumed from one) is not checked twice; the dates are checked either way.
 */
const p256 = () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const pem = (k: KeyObject) => k.export({ type: 'pkcs8', format: 'pem' }).toString();
const DAY = 86_400_000;
const now = new Date(Math.floor(Date.now() / 1000) * 1000);

function caOf(name: string) {
  const keys = p256();
  const certPem = buildCertificate({
    subject: [{ type: OID.commonName, value: name }],
    publicKey: keys.publicKey,
    signingKey: keys.privateKey,
    serialHex: '01',
    notBefore: new Date(now.getTime() - DAY),
    notAfter: new Date(now.getTime() + 30 * DAY),
    extensions: [
      ext.basicConstraints(true),
      ext.keyUsage('ca-signing'),
      ext.subjectKeyIdentifier(keys.publicKey),
    ],
  });
  return { certPem, keys, ca: FleetCa.load(certPem, pem(keys.privateKey)) };
}

/** A certificate of `subject` valid from a day ago to a day ahead, with these signer and extensions. */
function dayCertificate(o: {
  subject: string;
  issuer: string;
  publicKey: KeyObject;
  signingKey: KeyObject;
  serialHex: string;
  extensions: Parameters<typeof buildCertificate>[0]['extensions'];
}) {
  return buildCertificate({
    ...o,
    subject: [{ type: OID.commonName, value: o.subject }],
    issuer: [{ type: OID.commonName, value: o.issuer }],
    notBefore: new Date(now.getTime() - DAY),
    notAfter: new Date(now.getTime() + DAY),
  });
}

const fleet = caOf('terminal-auth test fleet CA');
const other = caOf('another CA');

/** A terminal certificate of `ca`, valid for `days` from `issuedAt`. */
function terminal(ca: FleetCa, id: string, issuedAt = now, days = 1) {
  const k = p256();
  const certPem = ca.issueClientCertificate(
    buildCsr(k.privateKey, k.publicKey, 'x'),
    id,
    issuedAt,
    days,
  ).certificatePem;
  return { cert: certPem, key: pem(k.privateKey) };
}

let server: Server;
let port: number;
/** The clock verifyPeer is given for the next connection. */
let clock = now.getTime();
const verdicts: PeerVerdict[] = [];
/** Whether OpenSSL had verified each connection's chain (the path verifyPeer does not check again). */
const authorized: boolean[] = [];
/** Each connection asked twice through peerVerdict, as a kept-alive connection's requests are: at the clock, and 10 days on. */
const keptAlive: [PeerVerdict, PeerVerdict][] = [];

beforeAll(async () => {
  const serverKey = pem(p256().privateKey);
  server = createServer({
    key: serverKey,
    cert: fleet.ca.issueServerCertificate(serverKey, ['localhost'], now),
    ca: [fleet.certPem],
    requestCert: true,
    rejectUnauthorized: false,
    ...TLS_SERVER_POLICY,
    ticketKeys: Buffer.alloc(48, 3),
    sessionIdContext: 'terminal-auth-test',
  });
  const ca = new X509Certificate(fleet.certPem);
  server.on('secureConnection', (tls: TLSSocket) => {
    verdicts.push(verifyPeer(tls, ca, clock));
    authorized.push(tls.authorized);
    keptAlive.push([
      peerVerdict(tls, fleet.certPem, clock),
      peerVerdict(tls, fleet.certPem, clock + 10 * DAY),
    ]);
    tls.on('error', () => {});
    tls.resume();
    tls.once('end', () => tls.end());
  });
  server.on('tlsClientError', () => {});
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

/** One connection: the verdict, whether it resumed, and the session ticket it was given. */
function handshake(client: { cert?: string; key?: string }, session?: Buffer) {
  return new Promise<{ verdict: PeerVerdict; authorized: boolean; resumed: boolean; session?: Buffer }>(
    (resolve, reject) => {
      const before = verdicts.length;
      let ticket: Buffer | undefined;
      let resumed = false;
      const s = connect({
        host: '127.0.0.1',
        port,
        servername: 'localhost',
        ca: fleet.certPem,
        ...client,
        ...(session ? { session } : {}),
      });
      // TLS 1.3 tickets come after a full handshake: the client leaves once it has one, or at
      // once when it resumed (OpenSSL sends no new ticket then).
      s.on('session', (t: Buffer) => {
        ticket = t;
        s.end();
      });
      s.once('secureConnect', () => {
        resumed = s.isSessionReused();
        if (resumed) s.end();
      });
      s.resume();
      s.once('error', reject);
      s.once('close', () => {
        const verdict = verdicts[before];
        if (!verdict) return reject(new Error('the server took no verdict'));
        resolve({
          verdict,
          authorized: authorized[before]!,
          resumed,
          ...(ticket ? { session: ticket } : {}),
        });
      });
    },
  );
}

describe('verifyPeer, over real TLS', () => {
  it("accepts the fleet CA's certificate on a full handshake and on a resumed one", async () => {
    clock = now.getTime();
    const t = terminal(fleet.ca, 'term_ok');
    const full = await handshake(t);
    expect(full.resumed).toBe(false);
    expect(full.verdict).toMatchObject({ ok: true, terminalId: 'term_ok' });
    expect(full.session).toBeDefined();
    const again = await handshake(t, full.session);
    expect(again.resumed).toBe(true);
    expect([full.authorized, again.authorized]).toEqual([true, true]);
    expect(again.verdict).toEqual(full.verdict);
  });

  it('refuses a resumed session once its certificate has expired (the dates are checked on every connection)', async () => {
    clock = now.getTime();
    const t = terminal(fleet.ca, 'term_expiring', now, 1);
    const full = await handshake(t);
    expect(full.verdict.ok).toBe(true);
    clock = now.getTime() + 2 * DAY;
    const later = await handshake(t, full.session);
    expect(later.resumed).toBe(true);
    expect(later.authorized).toBe(true);
    expect(later.verdict).toMatchObject({ ok: false, terminalId: 'term_expiring' });
    expect(later.verdict.ok === false && later.verdict.refusal.code).toBe('certificate_expired');
    clock = now.getTime();
  });

  it('a connection kept alive past its certificate: its identity is checked once, its dates at every request', async () => {
    clock = now.getTime();
    const before = keptAlive.length;
    const r = await handshake(terminal(fleet.ca, 'term_kept_alive', now, 1));
    expect(r.verdict.ok).toBe(true);
    const [first, later] = keptAlive[before]!;
    expect(first).toMatchObject({ ok: true, terminalId: 'term_kept_alive' });
    expect(later).toMatchObject({ ok: false, terminalId: 'term_kept_alive' });
    expect(later.ok === false && later.refusal.code).toBe('certificate_expired');
  });

  it('names an expired certificate on a full handshake (OpenSSL refused the chain; ours says why)', async () => {
    clock = now.getTime();
    const t = terminal(fleet.ca, 'term_old', new Date(now.getTime() - 3 * DAY), 1);
    const r = await handshake(t);
    expect(r.verdict.ok === false && r.verdict.refusal.code).toBe('certificate_expired');
    expect(r.verdict.ok === false && r.verdict.refusal.message).toContain('reprovision');
  });

  it("refuses another CA's certificate, and one naming the fleet CA but signed with another key", async () => {
    const foreign = await handshake(terminal(other.ca, 'term_foreign'));
    expect(foreign.verdict.ok === false && foreign.verdict.refusal.code).toBe('client_certificate_rejected');
    expect(foreign.verdict.ok === false && foreign.verdict.refusal.message).toContain(
      'its issuer is CN=another CA',
    );

    const k = p256();
    const forged = dayCertificate({
      subject: 'term_forged',
      issuer: 'terminal-auth test fleet CA',
      publicKey: k.publicKey,
      signingKey: other.keys.privateKey,
      serialHex: '0badc0de',
      extensions: [
        ext.basicConstraints(false),
        ext.keyUsage('leaf', k.publicKey),
        ext.extKeyUsage('clientAuth'),
      ],
    });
    const r = await handshake({ cert: forged, key: pem(k.privateKey) });
    expect(r.verdict.ok === false && r.verdict.refusal.code).toBe('client_certificate_rejected');
    expect(r.verdict.ok === false && r.verdict.refusal.message).toContain('does not verify');
  });

  it('refuses a certificate issued through an intermediate, even one the fleet CA signed (OpenSSL accepts that chain)', async () => {
    const mid = p256();
    const intermediate = dayCertificate({
      subject: 'an intermediate',
      issuer: 'terminal-auth test fleet CA',
      publicKey: mid.publicKey,
      signingKey: fleet.keys.privateKey,
      serialHex: '0c0ffee0',
      extensions: [
        ext.basicConstraints(true),
        ext.keyUsage('ca-signing'),
        ext.subjectKeyIdentifier(mid.publicKey),
        ext.authorityKeyIdentifier(keyIdentifier(fleet.keys.publicKey)),
      ],
    });
    const k = p256();
    const leaf = dayCertificate({
      subject: 'term_via_intermediate',
      issuer: 'an intermediate',
      publicKey: k.publicKey,
      signingKey: mid.privateKey,
      serialHex: '0badf00d',
      extensions: [
        ext.basicConstraints(false),
        ext.keyUsage('leaf', k.publicKey),
        ext.extKeyUsage('clientAuth'),
        ext.authorityKeyIdentifier(keyIdentifier(mid.publicKey)),
      ],
    });
    const r = await handshake({ cert: leaf + intermediate, key: pem(k.privateKey) });
    expect(r.authorized).toBe(true);
    expect(r.verdict.ok === false && r.verdict.refusal.code).toBe('client_certificate_rejected');
    expect(r.verdict.ok === false && r.verdict.refusal.message).toContain('its issuer is CN=an intermediate');
  });

  it('asks for a certificate when none is presented', async () => {
    const r = await handshake({});
    expect(r.verdict.ok === false && r.verdict.refusal.code).toBe('client_certificate_required');
  });
});
