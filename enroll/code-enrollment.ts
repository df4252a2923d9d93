import { createPublicKey, X509Certificate } from 'node:crypto';
import type { EnrollResponse } from '../protocol/enrollment.js';
import { ENROLL_PATH } from '../protocol/version.js';
import { CloudRequestError, cloudJson } from './cloud-client.js';
import { createCsr, newDeviceKey } from './device-key.js';
import { type Identity, installIdentity, readIdentity } from './identity-store.js';

/** Why an enrollment did not happen; `code` is stable (the cloud's code where it answered). */
export class EnrollmentError extends Error {
  override readonly name = 'EnrollmentError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface CodeEnrollment {
  stateDir: string;
  cloudUrl: string;
  /** The CA the technician was given to trust the cloud with (PEM). */
  caPem: string;
  code: string;
  force: boolean;
  softwareVersion: string;
  serialNumber?: string;
  model?: string;
  onProgress?(step: string): void;
}

/**
 * Enrolls with an enrollment code: key made here, CSR sent, certificate back. Nothing is written
 * to the state dir until the cloud has accepted; then the identity is installed atomically.
 */
export async function enrollWithCode(e: CodeEnrollment): Promise<Identity> {
  const existing = await readIdentity(e.stateDir);
  if (existing && !e.force) {
    throw new EnrollmentError(
      'already_enrolled',
      `this terminal is already enrolled as ${existing.terminalId} (${existing.name}); use --force to replace its identity`,
    );
  }
  try {
    new X509Certificate(e.caPem);
  } catch {
    throw new EnrollmentError('invalid_ca', 'the CA file is not a PEM certificate');
  }
  e.onProgress?.('making the device key pair');
  const keyPem = await newDeviceKey();
  const csr = await createCsr(keyPem, 'posagent-terminal');
  e.onProgress?.(`sending the enrollment request to ${e.cloudUrl}`);
  let res: EnrollResponse;
  try {
    res = await cloudJson<EnrollResponse>({
      cloudUrl: e.cloudUrl,
      caPem: e.caPem,
      method: 'POST',
      path: ENROLL_PATH,
      body: {
        method: 'code',
        code: e.code,
        csr,
        softwareVersion: e.softwareVersion,
        ...(e.serialNumber ? { serialNumber: e.serialNumber } : {}),
        ...(e.model ? { model: e.model } : {}),
      },
    });
  } catch (err) {
    if (err instanceof CloudRequestError) throw new EnrollmentError(err.code, err.message);
    throw err;
  }
  checkIssuedCertificate(res, keyPem);
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
      cloudUrl: res.cloudUrl || e.cloudUrl,
      enrolledAt: new Date().toISOString(),
      method: 'code',
    },
  });
}

/** The certificate must carry our public key and chain to the fleet CA the cloud gave us. */
function checkIssuedCertificate(res: EnrollResponse, keyPem: string): void {
  let cert: X509Certificate;
  let ca: X509Certificate;
  try {
    cert = new X509Certificate(res.certificate);
    ca = new X509Certificate(res.fleetCa);
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
