import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureDir, writeFileAtomic } from './atomic-file.js';

/**
 * The terminal's identity on disk, under the state dir:
 *   keys/client.key   (0600, in a 0700 dir) — never leaves the device, never logged
 *   certs/client.crt  the client certificate
 *   certs/fleet-ca.crt the pinned fleet CA
 *   identity.json     terminal id, location, name, cloud URL — written last: it marks "enrolled"
 */
export interface IdentityMeta {
  terminalId: string;
  locationId: string;
  name: string;
  cloudUrl: string;
  enrolledAt: string;
  method: 'code' | 'qr' | 'pair' | 'auto';
}

export interface IdentityPaths {
  keysDir: string;
  certsDir: string;
  keyFile: string;
  certFile: string;
  caFile: string;
  /** The cloud's data public key: card data is sealed to it before it is stored. */
  dataKeyFile: string;
  metaFile: string;
}

export function identityPaths(stateDir: string): IdentityPaths {
  const keysDir = join(stateDir, 'keys');
  const certsDir = join(stateDir, 'certs');
  return {
    keysDir,
    certsDir,
    keyFile: join(keysDir, 'client.key'),
    certFile: join(certsDir, 'client.crt'),
    caFile: join(certsDir, 'fleet-ca.crt'),
    dataKeyFile: join(certsDir, 'cloud-data.pub'),
    metaFile: join(stateDir, 'identity.json'),
  };
}

export interface Identity extends IdentityMeta {
  paths: IdentityPaths;
}

/** The identity if the terminal is enrolled, else null. Does not read the private key. */
export async function readIdentity(stateDir: string): Promise<Identity | null> {
  const paths = identityPaths(stateDir);
  let text: string;
  try {
    text = await readFile(paths.metaFile, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  return { ...(JSON.parse(text) as IdentityMeta), paths };
}

export interface NewIdentity {
  meta: IdentityMeta;
  keyPem: string;
  certificatePem: string;
  fleetCaPem: string;
  dataPublicKeyPem: string;
}

/** Installs a full identity. Each file atomically; identity.json last, so a crash leaves "not enrolled" or complete. */
export async function installIdentity(stateDir: string, id: NewIdentity): Promise<Identity> {
  const paths = identityPaths(stateDir);
  await ensureDir(stateDir, 0o700);
  await ensureDir(paths.keysDir, 0o700);
  await ensureDir(paths.certsDir, 0o755);
  await writeFileAtomic(paths.keyFile, id.keyPem, 0o600);
  await writeFileAtomic(paths.certFile, id.certificatePem, 0o644);
  await writeFileAtomic(paths.caFile, id.fleetCaPem, 0o644);
  await writeFileAtomic(paths.dataKeyFile, id.dataPublicKeyPem, 0o644);
  await writeFileAtomic(paths.metaFile, `${JSON.stringify(id.meta, null, 2)}\n`, 0o644);
  return { ...id.meta, paths };
}

export interface CertificateSummary {
  subject: string;
  serialNumber: string;
  notBefore: string;
  notAfter: string;
  daysLeft: number;
  fingerprint: string;
}

export function summariseCertificate(pem: string, nowMs: number): CertificateSummary {
  const c = new X509Certificate(pem);
  const notAfter = new Date(c.validTo);
  return {
    subject: c.subject,
    serialNumber: c.serialNumber,
    notBefore: new Date(c.validFrom).toISOString(),
    notAfter: notAfter.toISOString(),
    daysLeft: Math.floor((notAfter.getTime() - nowMs) / 86_400_000),
    fingerprint: c.fingerprint256.replace(/:/g, '').toLowerCase(),
  };
}
