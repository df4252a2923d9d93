import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { CertificationRequest, CertificationRequestInfo } from '@peculiar/asn1-csr';
import { AsnConvert } from '@peculiar/asn1-schema';
import { AlgorithmIdentifier, SubjectPublicKeyInfo } from '@peculiar/asn1-x509';
import { buildCsr, encodeName, OID } from '../../protocol/x509.js';

/**
 * CSRs for tests: real ones for a key made here (any RSA size, any exponent, any EC curve), and
 * hostile ones whose public key is whatever numbers an attacker puts in it (with a signature that
 * is only random bytes: it would take the old cloud minutes to find that out).
 */
export function rsaCsr(bits = 2048, exponent = 65537): { csr: string; keyPem: string } {
  const { privateKey } = generateKeyPairSync('rsa', {
    modulusLength: bits,
    publicExponent: exponent,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  const key = createPrivateKey(privateKey);
  return { csr: buildCsr(key, createPublicKey(key), 'posagent-terminal'), keyPem: privateKey };
}

/** DER of a definite length. */
function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v >>= 8) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

const der = (tag: number, body: Buffer) => Buffer.concat([Buffer.from([tag]), derLength(body.length), body]);

/** A CSR whose RSA key has a `modulusBits` modulus and an `exponentBits` exponent, signed with noise. */
export function hostileRsaCsr(modulusBits: number, exponentBits: number): string {
  const big = (bits: number) => {
    const bytes = randomBytes(Math.ceil(bits / 8));
    bytes[0] = bytes[0]! | 0x80;
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! | 1;
    return der(0x02, Buffer.concat([Buffer.from([0]), bytes])); // positive INTEGER
  };
  const rsaPublicKey = der(0x30, Buffer.concat([big(modulusBits), big(exponentBits)]));
  const info = new CertificationRequestInfo({
    version: 0,
    subject: encodeName([{ type: OID.commonName, value: 'x' }]),
    subjectPKInfo: new SubjectPublicKeyInfo({
      algorithm: new AlgorithmIdentifier({
        algorithm: '1.2.840.113549.1.1.1',
        parameters: new Uint8Array([5, 0]).buffer,
      }),
      subjectPublicKey: new Uint8Array(rsaPublicKey).buffer,
    }),
  });
  const csr = new CertificationRequest({
    certificationRequestInfo: info,
    signatureAlgorithm: new AlgorithmIdentifier({
      algorithm: '1.2.840.113549.1.1.11',
      parameters: new Uint8Array([5, 0]).buffer,
    }),
    signature: new Uint8Array(randomBytes(modulusBits / 8)).buffer,
  });
  return pem(Buffer.from(AsnConvert.serialize(csr)));
}

/** A real CSR for an EC key on `curve` (signed by it). */
export function ecCsr(curve: 'prime256v1' | 'secp384r1' | 'secp521r1'): string {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: curve });
  return buildCsr(privateKey, publicKey, 'posagent-terminal');
}

function pem(d: Buffer): string {
  const b64 = d.toString('base64');
  return `-----BEGIN CERTIFICATE REQUEST-----\n${b64.match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE REQUEST-----\n`;
}

/**
 * A CSR for an Ed25519 key, signed by it (Ed25519 signs the message itself: node:crypto with a
 * null digest).
 */
export function ed25519Csr(): string {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const info = new CertificationRequestInfo({
    version: 0,
    subject: encodeName([{ type: OID.commonName, value: 'posagent-terminal' }]),
    subjectPKInfo: AsnConvert.parse(publicKey.export({ type: 'spki', format: 'der' }), SubjectPublicKeyInfo),
  });
  const signature = sign(null, Buffer.from(AsnConvert.serialize(info)), privateKey);
  const csr = new CertificationRequest({
    certificationRequestInfo: info,
    signatureAlgorithm: new AlgorithmIdentifier({ algorithm: '1.3.101.112' }),
    signature: new Uint8Array(signature).buffer,
  });
  return pem(Buffer.from(AsnConvert.serialize(csr)));
}
