import { createHash, createPublicKey, X509Certificate } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { CloudRequestError, cloudJson } from '../cloud-access/cloud-client.js';
import type { ProxySettings } from '../cloud-access/proxy.js';
import { createCsr, newDeviceKey } from '../identity/device-key.js';
import { attest, type FactoryIdentity } from '../identity/factory-identity.js';
import {
  clearPairingState,
  type Identity,
  type IdentityMeta,
  installIdentity,
  readIdentity,
  writePairingState,
} from '../identity/identity-store.js';
import {
  type EnrollRequest,
  type EnrollResponse,
  type FleetCaResponse,
  type PairingPollResponse,
  type PairingResponse,
  parseQrPayload,
} from '../protocol/enrollment.js';
import { ENROLL_PATH } from '../protocol/version.js';

/**
 * Every way to enroll: a code typed (`code`), a QR scanned (`qr`), a code the device shows and
 * someone activates (`pair`), a pre-registered serial (`auto`). All make the key here, send only
 * a CSR, check what comes back, and install the identity atomically; nothing is written to the
 * state dir before the cloud accepted (a pairing persists only the code it shows).
 */
export class EnrollmentError extends Error {
  override readonly name = 'EnrollmentError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface EnrollmentBase {
  stateDir: string;
  force: boolean;
  softwareVersion: string;
  /** What the device is (hardware or device settings): sent with the request, kept in identity.json for Hello. */
  model?: string | undefined;
  serialNumber?: string | undefined;
  proxy?: ProxySettings;
  onProgress?(step: string): void;
}

export interface CodeEnrollment extends EnrollmentBase {
  cloudUrl: string;
  /** The CA the technician was given to trust the cloud with (PEM). */
  caPem: string;
  code: string;
}

async function refuseIfEnrolled(e: EnrollmentBase): Promise<void> {
  const existing = await readIdentity(e.stateDir);
  if (existing && !e.force) {
    throw new EnrollmentError(
      'already_enrolled',
      `this terminal is already enrolled as ${existing.terminalId} (${existing.name}); use --force to replace its identity`,
    );
  }
}

function checkCaPem(caPem: string): void {
  try {
    new X509Certificate(caPem);
  } catch {
    throw new EnrollmentError('invalid_ca', 'the CA file is not a PEM certificate');
  }
}

async function cloudCall<T>(r: Parameters<typeof cloudJson>[0]): Promise<T> {
  try {
    return await cloudJson<T>(r);
  } catch (err) {
    if (err instanceof CloudRequestError) throw new EnrollmentError(err.code, err.message);
    throw err;
  }
}

async function newKeyAndCsr(e: EnrollmentBase): Promise<{ keyPem: string; csr: string }> {
  e.onProgress?.('making the device key pair');
  const keyPem = await newDeviceKey();
  return { keyPem, csr: await createCsr(keyPem, 'posagent-terminal') };
}

/** Enrolls with an enrollment code typed on the device. */
export async function enrollWithCode(e: CodeEnrollment): Promise<Identity> {
  await refuseIfEnrolled(e);
  return enrollByRequest(e, e.cloudUrl, e.caPem, 'code', (csr) => ({
    method: 'code',
    code: e.code,
    csr,
    ...(e.serialNumber ? { serialNumber: e.serialNumber } : {}),
  }));
}

/**
 * Enrolls from a QR payload (`posagent://enroll?cloud&code&ca`): the fleet CA is fetched from
 * the cloud without trusting it, and trusted only if its SHA-256 fingerprint is the one in the QR
 * — before any key is made or anything is sent.
 */
export async function enrollWithQr(e: EnrollmentBase & { payload: string }): Promise<Identity> {
  let qr: ReturnType<typeof parseQrPayload>;
  try {
    qr = parseQrPayload(e.payload);
  } catch (err) {
    throw new EnrollmentError('invalid_qr', (err as Error).message);
  }
  await refuseIfEnrolled(e);
  e.onProgress?.(`fetching the fleet CA from ${qr.cloud} and checking its fingerprint`);
  const fetched = await cloudCall<FleetCaResponse>({
    cloudUrl: qr.cloud,
    caPem: null,
    method: 'GET',
    path: '/v1/fleet-ca',
    ...(e.proxy ? { proxy: e.proxy } : {}),
  });
  let actual: string;
  try {
    actual = createHash('sha256').update(new X509Certificate(fetched.certificate).raw).digest('hex');
  } catch {
    throw new EnrollmentError('bad_response', 'the cloud returned a fleet CA that cannot be read');
  }
  if (actual !== qr.ca)
    throw new EnrollmentError(
      'ca_fingerprint_mismatch',
      `the cloud at ${qr.cloud} presented a fleet CA whose fingerprint ${actual.slice(0, 16)}… is not the ${qr.ca.slice(0, 16)}… in the QR code; nothing was sent`,
    );
  return enrollByRequest(e, qr.cloud, fetched.certificate, 'qr', (csr) => ({
    method: 'code',
    code: qr.code,
    csr,
    ...(e.serialNumber ? { serialNumber: e.serialNumber } : {}),
  }));
}

/**
 * Zero-touch: enrolls by the device's serial number, pre-registered in the cloud, proven with the
 * factory identity (a signature over the serial and this enrollment's CSR). Without a factory
 * identity only a cloud that allows serial-only pre-registrations (unsafe) accepts it.
 */
export async function enrollWithSerial(
  e: EnrollmentBase & {
    cloudUrl: string;
    caPem: string;
    serialNumber: string;
    factory?: FactoryIdentity | null;
  },
): Promise<Identity> {
  await refuseIfEnrolled(e);
  if (e.factory) e.onProgress?.('proving the factory identity');
  return enrollByRequest(e, e.cloudUrl, e.caPem, 'auto', (csr) => ({
    method: 'auto',
    serialNumber: e.serialNumber,
    csr,
    ...(e.factory ? { attestation: attest(e.factory, e.serialNumber, csr) } : {}),
  }));
}

/** Key, CSR, request, install; the caller has checked that the terminal is not enrolled. */
async function enrollByRequest(
  e: EnrollmentBase,
  cloudUrl: string,
  caPem: string,
  method: IdentityMeta['method'],
  request: (csr: string) => EnrollRequest,
): Promise<Identity> {
  checkCaPem(caPem);
  const { keyPem, csr } = await newKeyAndCsr(e);
  e.onProgress?.(`sending the enrollment request to ${cloudUrl}`);
  const res = await cloudCall<EnrollResponse>({
    cloudUrl,
    caPem,
    method: 'POST',
    path: ENROLL_PATH,
    body: { ...request(csr), softwareVersion: e.softwareVersion, ...(e.model ? { model: e.model } : {}) },
    ...(e.proxy ? { proxy: e.proxy } : {}),
  });
  return install(e, keyPem, res, method, cloudUrl);
}

export interface PairingEnrollment extends EnrollmentBase {
  cloudUrl: string;
  caPem: string;
  /** Shown to the person who will activate it; called again when an expired code is replaced. */
  onCode(code: string, expiresAt: string): void;
  /** Called on every poll while waiting (for a progress line). */
  onWaiting?(expiresAt: string): void;
  signal?: AbortSignal;
}

/**
 * Pairing: the device asks for an activation code, shows it (and keeps it in the state dir so
 * `posagent status` and the POS app can show it), and waits until someone activates it in the
 * cloud. An expired code is replaced by a new one for the same key; the key never leaves.
 */
export async function enrollByPairing(e: PairingEnrollment): Promise<Identity> {
  await refuseIfEnrolled(e);
  checkCaPem(e.caPem);
  const { keyPem, csr } = await newKeyAndCsr(e);
  const call = <T>(method: 'POST', path: string, body: unknown) =>
    cloudCall<T>({
      cloudUrl: e.cloudUrl,
      caPem: e.caPem,
      method,
      path,
      body,
      ...(e.proxy ? { proxy: e.proxy } : {}),
    });
  try {
    for (;;) {
      e.onProgress?.(`asking ${e.cloudUrl} for an activation code`);
      const pairing = await call<PairingResponse>('POST', '/v1/pairings', {
        csr,
        softwareVersion: e.softwareVersion,
        ...(e.serialNumber ? { serialNumber: e.serialNumber } : {}),
        ...(e.model ? { model: e.model } : {}),
      });
      await writePairingState(e.stateDir, {
        activationCode: pairing.activationCode,
        expiresAt: pairing.expiresAt,
        cloudUrl: e.cloudUrl,
        pid: process.pid,
      });
      e.onCode(pairing.activationCode, pairing.expiresAt);
      const activated = await waitForActivation(e, pairing, call);
      if (activated) return await install(e, keyPem, activated, 'pair', e.cloudUrl);
      e.onProgress?.(`activation code ${pairing.activationCode} expired; asking for a new one`);
    }
  } finally {
    await clearPairingState(e.stateDir);
  }
}

/** Polls until activated (→ the enrollment) or expired (→ null). */
async function waitForActivation(
  e: PairingEnrollment,
  pairing: PairingResponse,
  call: <T>(method: 'POST', path: string, body: unknown) => Promise<T>,
): Promise<EnrollResponse | null> {
  for (;;) {
    let r: PairingPollResponse;
    try {
      r = await call<PairingPollResponse>(
        'POST',
        `/v1/pairings/${encodeURIComponent(pairing.pairingId)}/poll`,
        {
          pairingSecret: pairing.pairingSecret,
        },
      );
    } catch (err) {
      if (err instanceof EnrollmentError && err.code === 'code_expired') return null;
      if (err instanceof EnrollmentError && err.code === 'unreachable') {
        e.onProgress?.(`${err.message}; still waiting`);
        r = { status: 'pending', expiresAt: pairing.expiresAt };
      } else throw err;
    }
    if (r.status === 'activated') return r.enrollment;
    e.onWaiting?.(r.expiresAt);
    await sleep(pairing.pollIntervalMs, undefined, e.signal ? { signal: e.signal } : undefined);
  }
}

async function install(
  e: EnrollmentBase,
  keyPem: string,
  res: EnrollResponse,
  method: IdentityMeta['method'],
  cloudUrl: string,
): Promise<Identity> {
  checkIssuedCertificate(res.certificate, res.fleetCa, keyPem);
  e.onProgress?.('installing the identity');
  return installIdentity(e.stateDir, {
    keyPem,
    certificatePem: res.certificate,
    fleetCaPem: res.fleetCa,
    dataPublicKeyPem: res.dataPublicKey,
    meta: {
      terminalId: res.terminalId,
      locationId: res.locationId,
      name: res.name,
      cloudUrl: res.cloudUrl || cloudUrl,
      enrolledAt: new Date().toISOString(),
      method,
      ...(e.serialNumber ? { serialNumber: e.serialNumber } : {}),
      ...(e.model ? { model: e.model } : {}),
    },
  });
}

/** The certificate must carry our public key and chain to the fleet CA the cloud gave us. */
export function checkIssuedCertificate(certificatePem: string, fleetCaPem: string, keyPem: string): void {
  let cert: X509Certificate;
  let ca: X509Certificate;
  try {
    cert = new X509Certificate(certificatePem);
    ca = new X509Certificate(fleetCaPem);
  } catch {
    throw new EnrollmentError('bad_response', 'the cloud returned a certificate that cannot be read');
  }
  const ours = createPublicKey(keyPem).export({ type: 'spki', format: 'der' });
  const theirs = cert.publicKey.export({ type: 'spki', format: 'der' });
  if (!ours.equals(theirs))
    throw new EnrollmentError('bad_response', 'the issued certificate does not carry this device key');
  if (!cert.verify(ca.publicKey))
    throw new EnrollmentError('bad_response', 'the issued certificate is not signed by the fleet CA');
}
