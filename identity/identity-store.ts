import { X509Certificate } from 'node:crypto';
import { readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureDir, syncDir, writeFileAtomic } from '../files/atomic-file.js';

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
  /** What the device is, as it said at enrollment (sent again in every Hello). */
  serialNumber?: string;
  model?: string;
  /** Names the cloud gave with the terminal's profile (Hello answer, TerminalUpdated). */
  locationName?: string;
  organizationId?: string;
  organizationSlug?: string;
  organizationName?: string;
}

/** The fleet's view of the terminal that the cloud may change (rename, move to another store). */
export type IdentityProfile = Pick<
  IdentityMeta,
  'name' | 'locationId' | 'locationName' | 'organizationId' | 'organizationSlug' | 'organizationName'
>;

const PROFILE_KEYS = [
  'name',
  'locationId',
  'locationName',
  'organizationId',
  'organizationSlug',
  'organizationName',
] as const;

/**
 * Records a new profile from the cloud in identity.json (atomically) and in `identity`; returns
 * whether anything changed. Fields the cloud left out keep their value.
 */
export async function updateIdentityProfile(identity: Identity, profile: IdentityProfile): Promise<boolean> {
  const next: IdentityMeta = { ...metaOf(identity) };
  let changed = false;
  for (const k of PROFILE_KEYS) {
    const v = profile[k];
    if (v !== undefined && v !== next[k]) {
      (next as unknown as Record<string, string>)[k] = v;
      changed = true;
    }
  }
  if (!changed) return false;
  await writeFileAtomic(identity.paths.metaFile, `${JSON.stringify(next, null, 2)}\n`, 0o644);
  Object.assign(identity, next);
  return true;
}

function metaOf(identity: Identity): IdentityMeta {
  const { paths: _paths, ...meta } = identity;
  return meta;
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
  /** A device waiting to be paired: the code it shows (read by status and the POS app). */
  pairingFile: string;
  /** Present only between "the renewed pair is durable" and "it replaced the old one". */
  renewalMarker: string;
  /** The TLS sessions with the cloud, when kept on disk (setting tlsSessionsOnDisk), 0600. */
  tlsSessionsFile: string;
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
    pairingFile: join(stateDir, 'pairing.json'),
    renewalMarker: join(stateDir, 'renewal.commit'),
    tlsSessionsFile: join(keysDir, 'tls-sessions.json'),
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

/** The client key, certificate and pinned CA, as TLS options (`key`, `cert`, `ca`). */
export async function readClientTls(identity: Identity): Promise<{ key: string; cert: string; ca: string }> {
  const [key, cert, ca] = await Promise.all([
    readFile(identity.paths.keyFile, 'utf8'),
    readFile(identity.paths.certFile, 'utf8'),
    readFile(identity.paths.caFile, 'utf8'),
  ]);
  return { key, cert, ca };
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

// ---- renewal: a journal so that a power cut leaves the old pair or the new one, never a mix ----

export interface RenewedPair {
  keyPem: string;
  certificatePem: string;
  fleetCaPem: string;
  dataPublicKeyPem: string;
}

function staged(paths: IdentityPaths): [string, string][] {
  return [
    [`${paths.keyFile}.next`, paths.keyFile],
    [`${paths.certFile}.next`, paths.certFile],
    [`${paths.caFile}.next`, paths.caFile],
    [`${paths.dataKeyFile}.next`, paths.dataKeyFile],
  ];
}

/**
 * Installs a renewed key and certificate: (1) every new file written next to the old one,
 * (2) the commit marker written — from here on the new pair wins, (3) renamed into place,
 * (4) the marker removed. `recoverRenewal` finishes (3–4) after a crash, or discards (1).
 */
export async function installRenewal(
  stateDir: string,
  pair: RenewedPair,
  crashPoint: (name: string) => void = () => {},
): Promise<void> {
  const paths = identityPaths(stateDir);
  const [key, cert, ca, data] = staged(paths);
  await writeFileAtomic(key![0], pair.keyPem, 0o600);
  await writeFileAtomic(cert![0], pair.certificatePem, 0o644);
  await writeFileAtomic(ca![0], pair.fleetCaPem, 0o644);
  await writeFileAtomic(data![0], pair.dataPublicKeyPem, 0o644);
  crashPoint('renewal-staged');
  await writeFileAtomic(paths.renewalMarker, `${new Date().toISOString()}\n`, 0o600);
  crashPoint('renewal-committed');
  await rollForward(paths, crashPoint);
}

async function rollForward(paths: IdentityPaths, crashPoint: (name: string) => void): Promise<void> {
  for (const [from, to] of staged(paths)) {
    try {
      await rename(from, to);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err; // renamed before a crash
    }
    crashPoint('renewal-renaming');
  }
  await syncDir(paths.keysDir);
  await syncDir(paths.certsDir);
  await rm(paths.renewalMarker, { force: true });
}

/** After a crash: a committed renewal is finished, an uncommitted one discarded. Returns what it did. */
export async function recoverRenewal(stateDir: string): Promise<'none' | 'completed' | 'discarded'> {
  const paths = identityPaths(stateDir);
  if (await exists(paths.renewalMarker)) {
    await rollForward(paths, () => {});
    return 'completed';
  }
  let found = false;
  for (const [from] of staged(paths)) {
    if (await exists(from)) {
      found = true;
      await rm(from, { force: true });
    }
  }
  return found ? 'discarded' : 'none';
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Removes the identity (decommission): key, certificates, identity.json. */
export async function removeIdentity(stateDir: string): Promise<void> {
  const paths = identityPaths(stateDir);
  await rm(paths.metaFile, { force: true }); // first: from here on the device is "not enrolled"
  await rm(paths.keysDir, { recursive: true, force: true });
  await rm(paths.certsDir, { recursive: true, force: true });
  await rm(paths.renewalMarker, { force: true });
  await rm(paths.pairingFile, { force: true });
}

// ---- pairing state: the code a waiting device shows ----

export interface PairingState {
  activationCode: string;
  expiresAt: string;
  cloudUrl: string;
  /** The enroll process waiting for activation; a state left by a dead process is ignored. */
  pid: number;
}

export async function writePairingState(stateDir: string, state: PairingState): Promise<void> {
  await ensureDir(stateDir, 0o700);
  await writeFileAtomic(identityPaths(stateDir).pairingFile, `${JSON.stringify(state)}\n`, 0o644);
}

export async function clearPairingState(stateDir: string): Promise<void> {
  await rm(identityPaths(stateDir).pairingFile, { force: true });
}

/** The pending pairing, if a live enroll process is waiting for it. */
export async function readPairingState(
  stateDir: string,
): Promise<{ code: string; expiresAt: string } | null> {
  let state: PairingState;
  try {
    state = JSON.parse(await readFile(identityPaths(stateDir).pairingFile, 'utf8')) as PairingState;
  } catch {
    return null;
  }
  try {
    process.kill(state.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return null;
  }
  return { code: state.activationCode, expiresAt: state.expiresAt };
}
