import { generateKeyPair } from 'node:crypto';
import { promisify } from 'node:util';
import type forgeTypes from 'node-forge';

const generateKeyPairAsync = promisify(generateKeyPair);

/** A new RSA-2048 key pair made on the device (node:crypto, off the event loop). PKCS#8 PEM. */
export async function newDeviceKey(): Promise<string> {
  const { privateKey } = await generateKeyPairAsync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return privateKey;
}

/**
 * A PKCS#10 CSR signed by the device key. node-forge is loaded only here, so the running
 * daemon never carries it unless it renews.
 */
export async function createCsr(privateKeyPem: string, commonName: string): Promise<string> {
  const { default: forge } = await import('node-forge');
  const key = forge.pki.privateKeyFromPem(privateKeyPem) as forgeTypes.pki.rsa.PrivateKey;
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
  csr.setSubject([{ name: 'commonName', value: commonName }]);
  csr.sign(key, forge.md.sha256.create());
  return forge.pki.certificationRequestToPem(csr);
}
