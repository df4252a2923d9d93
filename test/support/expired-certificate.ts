import forge from 'node-forge';

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
  const original = forge.pki.certificateFromPem(certificatePem);
  const caCert = forge.pki.certificateFromPem(caCertPem);
  const cert = forge.pki.createCertificate();
  cert.publicKey = original.publicKey;
  cert.serialNumber = `0${forge.util.bytesToHex(forge.random.getBytesSync(8))}`;
  const day = 86_400_000;
  cert.validity.notBefore = new Date(Date.now() - (daysAgo + 90) * day);
  cert.validity.notAfter = new Date(Date.now() - daysAgo * day);
  cert.setSubject(original.subject.attributes);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', clientAuth: true },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(caKeyPem), forge.md.sha256.create());
  return forge.pki.certificateToPem(cert);
}
