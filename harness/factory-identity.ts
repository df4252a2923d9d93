import { createPublicKey, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import forge from 'node-forge';
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
  b[0] = b[0]! & 0x7f;
  return b.toString('hex');
}

function validFor(cert: forge.pki.Certificate, days: number): void {
  cert.validity.notBefore = new Date(Date.now() - 3_600_000);
  cert.validity.notAfter = new Date(Date.now() + days * 86_400_000);
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
  const keys = forge.pki.rsa.generateKeyPair(2048);
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = serial();
  validFor(cert, 3650);
  const subject = [{ name: 'commonName', value: name, valueTagClass: forge.asn1.Type.UTF8 }];
  cert.setSubject(subject as unknown as forge.pki.CertificateField[]);
  cert.setExtensions([
    {
      name: 'basicConstraints',
      cA: true,
      critical: true,
      ...(pathLen === undefined ? {} : { pathLenConstraint: pathLen }),
    },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
  ]);
  if (parent) {
    cert.setIssuer(forge.pki.certificateFromPem(parent.certificatePem).subject.attributes);
    cert.sign(forge.pki.privateKeyFromPem(parent.keyPem), forge.md.sha256.create());
  } else {
    cert.setIssuer(subject as unknown as forge.pki.CertificateField[]);
    cert.sign(keys.privateKey, forge.md.sha256.create());
  }
  const certificatePem = forge.pki.certificateToPem(cert);
  return {
    certificatePem,
    keyPem: forge.pki.privateKeyToPem(keys.privateKey),
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
  const keys = forge.pki.rsa.generateKeyPair(2048);
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = serial();
  validFor(cert, 3650);
  const subject = [
    { name: 'commonName', value: serialNumber, valueTagClass: forge.asn1.Type.UTF8 },
    {
      shortName: 'serialNumber',
      type: '2.5.4.5',
      value: serialNumber,
      valueTagClass: forge.asn1.Type.PRINTABLESTRING,
    },
  ];
  cert.setSubject(subject as unknown as forge.pki.CertificateField[]);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, critical: true },
  ]);
  if (ca) {
    const caCert = forge.pki.certificateFromPem(ca.certificatePem);
    cert.setIssuer(caCert.subject.attributes);
    cert.sign(forge.pki.privateKeyFromPem(ca.keyPem), forge.md.sha256.create());
  } else {
    cert.setIssuer(subject as unknown as forge.pki.CertificateField[]);
    cert.sign(keys.privateKey, forge.md.sha256.create());
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const keyPem = forge.pki.privateKeyToPem(keys.privateKey);
  const keyFile = join(dir, 'device.key');
  const certFile = join(dir, 'device.crt');
  writeFileSync(keyFile, keyPem, { mode: 0o600 });
  // The factory certificate, then the intermediates up to the root (which the cloud has).
  const intermediates = ca && !isRoot(ca) ? `${ca.certificatePem}${ca.chainPem ?? ''}` : '';
  writeFileSync(certFile, `${forge.pki.certificateToPem(cert)}${intermediates}`, { mode: 0o644 });
  const publicKeyPem = createPublicKey(keyPem).export({ type: 'spki', format: 'pem' }).toString();
  return { serialNumber, keyFile, certFile, publicKeyPem };
}
