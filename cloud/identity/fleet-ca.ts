import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPair,
  type KeyObject,
  randomBytes,
  X509Certificate,
} from 'node:crypto';
import { isIP } from 'node:net';
import { promisify } from 'node:util';
import type { Name } from '@peculiar/asn1-x509';
import {
  buildCertificate,
  ext,
  keyIdentifier,
  OID,
  parseCertificate,
  subjectKeyIdentifierOf,
} from '../../protocol/x509.js';
import { acceptCsr, CsrRejectedError } from './csr-policy.js';

export { CsrRejectedError };

const generateKeyPairAsync = promisify(generateKeyPair);

/**
 * A private key in PKCS#8 PEM, made with node:crypto (native, off the event loop): ECDSA P-256 by
 * default (the fleet CA and the server key of a new cloud), or RSA with the given modulus size
 * (the data key, which terminals seal card data to with RSA-OAEP).
 */
export async function newPrivateKeyPem(kind: 'p256' | number = 'p256'): Promise<string> {
  const { privateKey } =
    kind === 'p256'
      ? await generateKeyPairAsync('ec', {
          namedCurve: 'prime256v1',
          publicKeyEncoding: { type: 'spki', format: 'pem' },
          privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
        })
      : await generateKeyPairAsync('rsa', {
          modulusLength: kind,
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
  bytes[0] = (bytes[0]! & 0x7f) | 0x01; // positive INTEGER, no leading zero octet to strip
  return bytes.toString('hex');
}

/** Certificate dates are whole seconds (UTCTime): what was issued is what is reported. */
const seconds = (ms: number) => new Date(Math.floor(ms / 1000) * 1000);

/**
 * The fleet certificate authority of the reference cloud: it signs the cloud's server
 * certificate and every terminal's client certificate. Agents pin its certificate. A new CA is
 * ECDSA P-256; a CA made before that (RSA-2048) is loaded and used as it is — an existing fleet's
 * pinned CA never changes.
 */
export class FleetCa {
  private readonly key: KeyObject;
  /** The CA's subject exactly as its certificate encodes it (issuer names then match byte for byte). */
  private readonly subject: Name;
  private readonly keyId: Uint8Array;

  private constructor(
    readonly certificatePem: string,
    keyPem: string,
  ) {
    this.key = createPrivateKey(keyPem);
    const cert = parseCertificate(certificatePem);
    this.subject = cert.tbsCertificate.subject;
    this.keyId = subjectKeyIdentifierOf(cert) ?? keyIdentifier(createPublicKey(certificatePem));
  }

  static load(certificatePem: string, keyPem: string): FleetCa {
    return new FleetCa(certificatePem, keyPem);
  }

  /** Makes a new self-signed P-256 CA; returns it with its key PEM for the caller to store. */
  static async create(commonName: string, now: Date): Promise<{ ca: FleetCa; keyPem: string }> {
    const keyPem = await newPrivateKeyPem('p256');
    const key = createPrivateKey(keyPem);
    const publicKey = createPublicKey(key);
    const certificatePem = buildCertificate({
      subject: [
        { type: OID.commonName, value: commonName },
        { type: OID.organizationName, value: 'posagent fleet' },
      ],
      publicKey,
      signingKey: key,
      serialHex: serial(),
      notBefore: seconds(now.getTime() - BACKDATE_MS),
      notAfter: seconds(now.getTime() + 3650 * DAY_MS),
      extensions: [
        ext.basicConstraints(true),
        ext.keyUsage('ca-signing'),
        ext.subjectKeyIdentifier(publicKey),
      ],
    });
    return { ca: new FleetCa(certificatePem, keyPem), keyPem };
  }

  get fingerprint(): string {
    return certificateFingerprint(this.certificatePem);
  }

  /** The CA key's type: 'ec' for a CA made since P-256, 'rsa' for an older one. */
  get keyType(): string {
    return this.key.asymmetricKeyType ?? 'unknown';
  }

  /** A TLS server certificate for the given host names and IP addresses. */
  issueServerCertificate(keyPem: string, hosts: readonly string[], now: Date, days = 825): string {
    const publicKey = createPublicKey(keyPem);
    const unique = [...new Set(hosts)];
    return this.sign(publicKey, hosts[0] ?? 'localhost', now, days, [
      ext.basicConstraints(false),
      ext.keyUsage('leaf', publicKey),
      ext.extKeyUsage('serverAuth'),
      ext.subjectAltName(
        unique.filter((h) => !isIP(h)),
        unique.filter((h) => isIP(h)),
      ),
    ]).certificatePem;
  }

  /**
   * A CSR's public key, if the CSR passes the fleet's key policy (cloud/csr-policy.ts: the key is
   * checked before its signature is); else CsrRejectedError.
   */
  checkCsr(csrPem: string): KeyObject {
    return acceptCsr(csrPem).publicKey;
  }

  /**
   * Checks a terminal's CSR (key policy, then self-signature) and issues its client certificate.
   * The subject is set by the cloud (CN = terminal id), never taken from the CSR.
   */
  issueClientCertificate(csrPem: string, terminalId: string, now: Date, days: number): IssuedCertificate {
    const pub = this.checkCsr(csrPem);
    return this.sign(pub, terminalId, now, days, [
      ext.basicConstraints(false),
      ext.keyUsage('leaf', pub),
      ext.extKeyUsage('clientAuth'),
    ]);
  }

  private sign(
    publicKey: KeyObject,
    commonName: string,
    now: Date,
    days: number,
    extensions: ReturnType<typeof ext.basicConstraints>[],
  ): IssuedCertificate {
    const serialNumber = serial();
    const notBefore = seconds(now.getTime() - BACKDATE_MS);
    const notAfter = seconds(now.getTime() + days * DAY_MS);
    const certificatePem = buildCertificate({
      subject: [{ type: OID.commonName, value: commonName }],
      issuer: this.subject,
      publicKey,
      signingKey: this.key,
      serialHex: serialNumber,
      notBefore,
      notAfter,
      extensions: [...extensions, ext.authorityKeyIdentifier(this.keyId)],
    });
    return {
      certificatePem,
      serialNumber,
      fingerprint: certificateFingerprint(certificatePem),
      notBefore,
      notAfter,
    };
  }
}
