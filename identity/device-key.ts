import { createPrivateKey, createPublicKey, generateKeyPair } from 'node:crypto';
import { promisify } from 'node:util';

const generateKeyPairAsync = promisify(generateKeyPair);

/**
 * A new ECDSA P-256 key pair made on the device (node:crypto, off the event loop), PKCS#8 PEM.
 * P-256 signs ~25× faster than RSA-2048 (the TLS handshake's cost on both sides) and its
 * certificate is a third of the size. An RSA identity enrolled before moves to P-256 at its next
 * renewal, which always makes a new key here.
 */
export async function newDeviceKey(): Promise<string> {
  const { privateKey } = await generateKeyPairAsync('ec', {
    namedCurve: 'prime256v1',
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return privateKey;
}

/**
 * A PKCS#10 CSR signed by the device key (ECDSA P-256 with SHA-256, or an RSA key with SHA-256).
 * The encoder (protocol/x509.ts) is loaded only here, so the running daemon never carries it
 * unless it enrolls or renews.
 */
export async function createCsr(privateKeyPem: string, commonName: string): Promise<string> {
  const { buildCsr } = await import('../protocol/x509.js');
  const key = createPrivateKey(privateKeyPem);
  return buildCsr(key, createPublicKey(key), commonName);
}
