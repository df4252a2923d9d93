import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { CloudRequestError, cloudJson } from '../cloud-access/cloud-client.js';
import type { ProxySettings } from '../cloud-access/proxy.js';
import { createCsr, newDeviceKey } from '../identity/device-key.js';
import {
  type CertificateSummary,
  type Identity,
  installRenewal,
  readClientTls,
  recoverRenewal,
  summariseCertificate,
} from '../identity/identity-store.js';
import type { RenewedCertificate } from '../protocol/messages.js';
import { checkIssuedCertificate, EnrollmentError } from './enrollment.js';

/**
 * Renewal and reprovisioning: a *new* key made here, its CSR sent (over the link by the daemon,
 * over mTLS HTTPS by the CLI when the daemon is down), the certificate checked, and the pair
 * installed through the renewal journal — the old pair stays in use until then.
 */
export type RenewRequest = (csr: string) => Promise<RenewedCertificate>;

/**
 * Whether a certificate should be renewed now: less than a third of its life left, or less than
 * `beforeDays` — but the fixed days never reach past half its life. A fleet whose certificates
 * live 10 days is renewed with 5 days left, not at once: with "30 days" alone every certificate
 * shorter than 30 days would be due the moment it is issued, and the agent would renew on every
 * link, for ever.
 */
export function renewalDue(
  cert: { notBefore: string; notAfter: string },
  nowMs: number,
  beforeDays: number,
): boolean {
  const start = Date.parse(cert.notBefore);
  const end = Date.parse(cert.notAfter);
  const life = end - start;
  const left = end - nowMs;
  return left < Math.max(life / 3, Math.min(beforeDays * 86_400_000, life / 2));
}

export async function renewIdentity(
  identity: Identity,
  stateDir: string,
  request: RenewRequest,
  crashPoint: (name: string) => void = () => {},
): Promise<{ before: CertificateSummary; after: CertificateSummary }> {
  const before = summariseCertificate(await readFile(identity.paths.certFile, 'utf8'), Date.now());
  const keyPem = await newDeviceKey();
  const csr = await createCsr(keyPem, identity.terminalId);
  const renewed = await request(csr);
  checkIssuedCertificate(renewed.certificate, renewed.fleetCa, keyPem);
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(new X509Certificate(renewed.certificate).subject)?.[1];
  if (cn !== identity.terminalId)
    throw new EnrollmentError(
      'bad_response',
      `the renewed certificate names ${cn}, not ${identity.terminalId}`,
    );
  crashPoint('renewal-received');
  await installRenewal(
    stateDir,
    {
      keyPem,
      certificatePem: renewed.certificate,
      fleetCaPem: renewed.fleetCa,
      dataPublicKeyPem: renewed.dataPublicKey,
    },
    crashPoint,
  );
  return { before, after: summariseCertificate(renewed.certificate, Date.now()) };
}

/** Renewal without the daemon: the CLI calls the cloud over HTTPS with the current client certificate. */
export async function renewDirect(
  identity: Identity,
  stateDir: string,
  cloudUrl: string,
  proxy?: ProxySettings,
): Promise<{ before: CertificateSummary; after: CertificateSummary }> {
  await recoverRenewal(stateDir);
  const { key, cert, ca } = await readClientTls(identity);
  return renewIdentity(identity, stateDir, async (csr) => {
    try {
      return await cloudJson<RenewedCertificate>({
        cloudUrl,
        caPem: ca,
        cert,
        key,
        method: 'POST',
        path: '/v1/agent/certificate',
        body: { csr },
        ...(proxy ? { proxy } : {}),
      });
    } catch (err) {
      if (err instanceof CloudRequestError) throw new EnrollmentError(err.code, err.message);
      throw err;
    }
  });
}
