import { createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';
import { buildCertificate, ext, parseCertificate, subjectKeyIdentifierOf } from '../../protocol/x509.js';

/**
 * A client certificate for the same key and subject as `certificatePem`, signed by the test
 * cloud's CA, that expired `daysAgo` days ago — an already-expired certificate from the test CA,
 * so that no test needs to move the machine's clock (no faketime).
 */
export function expiredCopy(
  certificatePem: string,
  caCertPem: string,
  caKeyPem: string,
  daysAgo = 10,
): string {
  const original = parseCertificate(certificatePem);
  const caCert = parseCertificate(caCertPem);
  const day = 86_400_000;
  const at = (ms: number) => new Date(Math.floor(ms / 1000) * 1000);
  const publicKey = createPublicKey(certificatePem);
  const keyId = subjectKeyIdentifierOf(caCert);
  return buildCertificate({
    subject: original.tbsCertificate.subject,
    issuer: caCert.tbsCertificate.subject,
    publicKey,
    signingKey: createPrivateKey(caKeyPem),
    serialHex: `01${randomBytes(8).toString('hex')}`,
    notBefore: at(Date.now() - (daysAgo + 90) * day),
    notAfter: at(Date.now() - daysAgo * day),
    extensions: [
      ext.basicConstraints(false),
      ext.keyUsage('leaf', publicKey),
      ext.extKeyUsage('clientAuth'),
      ...(keyId ? [ext.authorityKeyIdentifier(keyId)] : []),
    ],
  });
}
