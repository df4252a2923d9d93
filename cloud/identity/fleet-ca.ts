import { createHash, generateKeyPair, randomBytes, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { promisify } from 'node:util';
import forge from 'node-forge';
import { acceptCsr, CsrRejectedError } from './csr-policy.js';

export { CsrRejectedError };

const generateKeyPairAsync = promisify(generateKeyPair);

/** An RSA private key in PKCS#8 PEM, made with node:crypto (fast, native). */
export async function newPrivateKeyPem(bits = 2048): Promise<string> {
  const { privateKey } = await generateKeyPairAsync('rsa', {
    modulusLength: bits,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return privateKey;
}

/** SHA-256 of a certificate's DER, lowercase hex without separators. */
export function certificateFingerprint(certPem: string): string {
  return createHash('sha256').update(new X509Certificate(certPem).raw).digest('hex');
}

export interface IssuedCertificate {
  certificatePem: string;
  serialNumber: string;
  fingerprint: string;
  notBefore: Date;
  notAfter: Date;
}

/** Client certificates are back-dated so a device whose clock is a little behind still accepts them. */
const BACKDATE_MS = 5 * 60_000;
const DAY_MS = 86_400_000;

function serial(): string {
  const bytes = randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f; // positive INTEGER
  return bytes.toString('hex');
}

/**
 * A name attribute encoded as UTF8String. forge's default is PrintableString, which may not hold
 * `_` (terminal ids are `term_…`): strict X.509 parsers refuse such certificates.
 */
function utf8(name: string, value: string): forge.pki.CertificateField {
  return {
    name,
    value,
    valueTagClass: forge.asn1.Type.UTF8 as unknown as forge.pki.CertificateField['valueTagClass'],
  };
}

/**
 * The fleet certificate authority of the reference cloud: it signs the cloud's server
 * certificate and every terminal's client certificate. Agents pin its certificate.
 */
export class FleetCa {
  private readonly cert: forge.pki.Certificate;
  private readonly key: forge.pki.rsa.PrivateKey;

  private constructor(
    readonly certificatePem: string,
    keyPem: string,
  ) {
    this.cert = forge.pki.certificateFromPem(certificatePem);
    this.key = forge.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey;
  }

  static load(certificatePem: string, keyPem: string): FleetCa {
    return new FleetCa(certificatePem, keyPem);
  }

  /** Makes a new self-signed CA; returns it with its key PEM for the caller to store. */
  static async create(commonName: string, now: Date): Promise<{ ca: FleetCa; keyPem: string }> {
    const keyPem = await newPrivateKeyPem(2048);
    const key = forge.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey;
    const cert = forge.pki.createCertificate();
    cert.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
    cert.serialNumber = serial();
    cert.validity.notBefore = new Date(now.getTime() - BACKDATE_MS);
    cert.validity.notAfter = new Date(now.getTime() + 3650 * DAY_MS);
    const subject = [utf8('commonName', commonName), utf8('organizationName', 'posagent fleet')];
    cert.setSubject(subject);
    cert.setIssuer(subject);
    cert.setExtensions([
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
      { name: 'subjectKeyIdentifier' },
    ]);
    cert.sign(key, forge.md.sha256.create());
    return { ca: new FleetCa(forge.pki.certificateToPem(cert), keyPem), keyPem };
  }

  get fingerprint(): string {
    return certificateFingerprint(this.certificatePem);
  }

  /** A TLS server certificate for the given host names and IP addresses. */
  issueServerCertificate(keyPem: string, hosts: readonly string[], now: Date, days = 825): string {
    const key = forge.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey;
    const altNames = [...new Set(hosts)].map((h) => (isIP(h) ? { type: 7, ip: h } : { type: 2, value: h }));
    return this.sign(forge.pki.setRsaPublicKey(key.n, key.e), hosts[0] ?? 'localhost', now, days, [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames },
    ]).certificatePem;
  }

  /**
   * A CSR's public key, if the CSR passes the fleet's key policy (cloud/csr-policy.ts: the key is
   * checked before its signature is); else CsrRejectedError.
   */
  checkCsr(csrPem: string): forge.pki.PublicKey {
    return forge.pki.publicKeyFromPem(acceptCsr(csrPem).publicKeyPem);
  }

  /**
   * Checks a terminal's CSR (key policy, then self-signature) and issues its client certificate.
   * The subject is set by the cloud (CN = terminal id), never taken from the CSR.
   */
  issueClientCertificate(csrPem: string, terminalId: string, now: Date, days: number): IssuedCertificate {
    const pub = this.checkCsr(csrPem);
    return this.sign(pub, terminalId, now, days, [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', clientAuth: true },
    ]);
  }

  private sign(
    publicKey: forge.pki.PublicKey,
    commonName: string,
    now: Date,
    days: number,
    extensions: object[],
  ): IssuedCertificate {
    const cert = forge.pki.createCertificate();
    cert.publicKey = publicKey;
    cert.serialNumber = serial();
    cert.validity.notBefore = new Date(now.getTime() - BACKDATE_MS);
    cert.validity.notAfter = new Date(now.getTime() + days * DAY_MS);
    cert.setSubject([utf8('commonName', commonName)]);
    // The issuer is the CA's subject exactly as the CA certificate encodes it (a CA made before
    // names were UTF8String keeps its encoding, so chains still match byte for byte).
    cert.setIssuer(this.cert.subject.attributes);
    cert.setExtensions([
      ...extensions,
      { name: 'authorityKeyIdentifier', keyIdentifier: this.cert.generateSubjectKeyIdentifier().getBytes() },
    ]);
    cert.sign(this.key, forge.md.sha256.create());
    const certificatePem = forge.pki.certificateToPem(cert);
    return {
      certificatePem,
      serialNumber: cert.serialNumber,
      fingerprint: certificateFingerprint(certificatePem),
      notBefore: cert.validity.notBefore,
      notAfter: cert.validity.notAfter,
    };
  }
}
