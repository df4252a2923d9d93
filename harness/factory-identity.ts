import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
} from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildCertificate, ext, OID, parseCertificate } from '../protocol/x509.js';
import { tempDir } from './local-fleet.js';

/**
 * Factory identities for the demo and the tests — what a terminal's manufacturer puts on the
 * device: a key made at manufacture and a certificate for it from the manufacturer's CA, naming
 * the serial. Real devices keep the key in a secure element; here it is a PEM file (0600).
 */
export interface ManufacturerCa {
  certificatePem: string;
  keyPem: string;
  /** For an intermediate: the certificates above it, up to (not including) the root CA. */
  chainPem?: string;
}

export interface FactoryIdentityFiles {
  serialNumber: string;
  keyFile: string;
  certFile: string;
  /** The factory key's public half (SPKI PEM): what a pre-registration by key names. */
  publicKeyPem: string;
}

function serial(): string {
  const b = randomBytes(12);
  b[0] = (b[0]! & 0x7f) | 0x01;
  return b.toString('hex');
}

const validity = (days: number) => ({
  notBefore: new Date(Math.floor((Date.now() - 3_600_000) / 1000) * 1000),
  notAfter: new Date(Math.floor((Date.now() + days * 86_400_000) / 1000) * 1000),
});

/** An RSA-2048 key pair (node:crypto), the key as PKCS#8 PEM. */
function rsaKeys(): { keyPem: string; privateKey: KeyObject; publicKey: KeyObject } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), privateKey, publicKey };
}

/**
 * A manufacturer CA: self-signed, or — with `parent` — an intermediate issued by it (optionally
 * with a path length constraint).
 */
export function newManufacturerCa(
  name = 'Acme Terminals Manufacturing CA',
  parent?: ManufacturerCa,
  pathLen?: number,
): ManufacturerCa {
  const keys = rsaKeys();
  const subject = [{ type: OID.commonName, value: name }];
  const certificatePem = buildCertificate({
    subject,
    ...(parent
      ? {
          issuer: parseCertificate(parent.certificatePem).tbsCertificate.subject,
          signingKey: createPrivateKey(parent.keyPem),
        }
      : { signingKey: keys.privateKey }),
    publicKey: keys.publicKey,
    serialHex: serial(),
    ...validity(3650),
    extensions: [ext.basicConstraints(true, pathLen), ext.keyUsage('ca')],
  });
  return {
    certificatePem,
    keyPem: keys.keyPem,
    // An intermediate carries the intermediates above it (none when its parent is the root).
    ...(parent ? { chainPem: isRoot(parent) ? '' : `${parent.certificatePem}${parent.chainPem}` } : {}),
  };
}

function isRoot(ca: ManufacturerCa): boolean {
  return ca.chainPem === undefined;
}

/**
 * A device's factory identity for `serialNumber`: issued by `ca`, or self-signed when `ca` is
 * omitted (for a pre-registration that names the device's public key). Written into `dir`.
 */
export function newFactoryIdentity(
  serialNumber: string,
  ca?: ManufacturerCa,
  dir = tempDir('factory'),
): FactoryIdentityFiles {
  const keys = rsaKeys();
  const subject = [
    { type: OID.commonName, value: serialNumber },
    { type: OID.serialNumber, value: serialNumber, printable: true },
  ];
  const leafPem = buildCertificate({
    subject,
    ...(ca
      ? {
          issuer: parseCertificate(ca.certificatePem).tbsCertificate.subject,
          signingKey: createPrivateKey(ca.keyPem),
        }
      : { signingKey: keys.privateKey }),
    publicKey: keys.publicKey,
    serialHex: serial(),
    ...validity(3650),
    extensions: [ext.basicConstraints(false, undefined, false), ext.keyUsage('leaf')],
  });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const keyPem = keys.keyPem;
  const keyFile = join(dir, 'device.key');
  const certFile = join(dir, 'device.crt');
  writeFileSync(keyFile, keyPem, { mode: 0o600 });
  // The factory certificate, then the intermediates up to the root (which the cloud has).
  const intermediates = ca && !isRoot(ca) ? `${ca.certificatePem}${ca.chainPem ?? ''}` : '';
  writeFileSync(certFile, `${leafPem}${intermediates}`, { mode: 0o644 });
  const publicKeyPem = createPublicKey(keyPem).export({ type: 'spki', format: 'pem' }).toString();
  return { serialNumber, keyFile, certFile, publicKeyPem };
}
