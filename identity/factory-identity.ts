import { createPrivateKey, sign, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { autoEnrollmentProof, type FactoryAttestation } from '../protocol/enrollment.js';

/**
 * The device's factory identity: a key made at manufacture (ideally in a secure element; here a
 * PEM file) and its certificate, from the manufacturer's CA. Zero-touch enrollment proves
 * possession of it; a serial alone proves nothing. Never sent: only the certificate and a
 * signature over the enrollment proof leave the device.
 */
export interface FactoryIdentity {
  keyPem: string;
  /** The factory certificate, then any intermediates (PEM). */
  certificatePem: string;
  /** The serial the certificate names (subject serialNumber, else CN), if any. */
  serialNumber: string | null;
}

export class FactoryIdentityError extends Error {
  override readonly name = 'FactoryIdentityError';
}

/** Reads the factory identity; null when neither file exists (a device without one). */
export async function readFactoryIdentity(
  keyFile: string,
  certFile: string,
): Promise<FactoryIdentity | null> {
  const read = (f: string) =>
    f
      ? readFile(f, 'utf8').catch((err: NodeJS.ErrnoException) => {
          if (err.code === 'ENOENT') return null;
          throw new FactoryIdentityError(
            `cannot read the factory identity file ${f}: ${err.code ?? err.message}`,
          );
        })
      : Promise.resolve(null);
  const [keyPem, certificatePem] = await Promise.all([read(keyFile), read(certFile)]);
  if (keyPem === null && certificatePem === null) return null;
  if (keyPem === null || certificatePem === null)
    throw new FactoryIdentityError(
      `the factory identity is incomplete: ${keyPem === null ? `no key at ${keyFile}` : `no certificate at ${certFile}`}`,
    );
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(certificatePem);
    createPrivateKey(keyPem);
  } catch (err) {
    throw new FactoryIdentityError(`the factory identity cannot be read: ${(err as Error).message}`);
  }
  return { keyPem, certificatePem, serialNumber: subjectSerial(leaf.subject) };
}

/** The serial a certificate subject names: its serialNumber attribute, else its CN. */
export function subjectSerial(subject: string): string | null {
  const fields = new Map<string, string>();
  for (const line of subject.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) fields.set(line.slice(0, i).trim(), line.slice(i + 1).trim());
  }
  return fields.get('serialNumber') || fields.get('CN') || null;
}

/** Signs the proof for `method: "auto"` with the factory key (Ed25519, or SHA-256 with RSA/ECDSA). */
export function attest(f: FactoryIdentity, serialNumber: string, csr: string): FactoryAttestation {
  const key = createPrivateKey(f.keyPem);
  const algorithm = key.asymmetricKeyType === 'ed25519' ? null : 'sha256';
  const signature = sign(algorithm, Buffer.from(autoEnrollmentProof(serialNumber, csr)), key);
  return { certificate: f.certificatePem, signature: signature.toString('base64') };
}
