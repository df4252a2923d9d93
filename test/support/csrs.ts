import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import forge from 'node-forge';

/**
 * CSRs for tests: real ones for a key made here (any RSA size, any exponent), and hostile ones
 * whose public key is whatever numbers an attacker puts in it (with a signature that is only
 * random bytes: it would take the old cloud minutes to find that out).
 */
export function rsaCsr(bits = 2048, exponent = 65537): { csr: string; keyPem: string } {
  const { privateKey } = generateKeyPairSync('rsa', {
    modulusLength: bits,
    publicExponent: exponent,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  const key = forge.pki.privateKeyFromPem(privateKey) as forge.pki.rsa.PrivateKey;
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
  csr.setSubject([{ name: 'commonName', value: 'posagent-terminal' }]);
  csr.sign(key, forge.md.sha256.create());
  return { csr: forge.pki.certificationRequestToPem(csr), keyPem: privateKey };
}

/** A CSR whose RSA key has a `modulusBits` modulus and an `exponentBits` exponent, signed with noise. */
export function hostileRsaCsr(modulusBits: number, exponentBits: number): string {
  const big = (bits: number) => {
    const bytes = randomBytes(Math.ceil(bits / 8));
    bytes[0] = bytes[0]! | 0x80;
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! | 1;
    return new forge.jsbn.BigInteger(bytes.toString('hex'), 16);
  };
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = forge.pki.setRsaPublicKey(big(modulusBits), big(exponentBits));
  csr.setSubject([{ name: 'commonName', value: 'x' }]);
  const c = csr as unknown as { signatureOid: string; signature: string; md: forge.md.MessageDigest };
  c.signatureOid = forge.pki.oids.sha256WithRSAEncryption!;
  c.md = forge.md.sha256.create();
  c.signature = randomBytes(modulusBits / 8).toString('binary');
  return forge.pki.certificationRequestToPem(csr);
}

/** A real CSR for an EC key (signed by it), built by hand in ASN.1 since forge has no EC. */
export function ecCsr(curve: 'prime256v1' | 'secp384r1' | 'secp521r1'): string {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: curve });
  const asn1 = forge.asn1;
  const spki = asn1.fromDer(
    forge.util.createBuffer(publicKey.export({ type: 'spki', format: 'der' }).toString('binary')),
  );
  const info = asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, asn1.integerToDer(0).getBytes()),
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, []),
    spki,
    asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, []),
  ]);
  const tbs = Buffer.from(asn1.toDer(info).getBytes(), 'binary');
  const sig = sign('sha256', tbs, privateKey);
  const csr = asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
    info,
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
      asn1.create(
        asn1.Class.UNIVERSAL,
        asn1.Type.OID,
        false,
        asn1.oidToDer('1.2.840.10045.4.3.2').getBytes(),
      ),
    ]),
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BITSTRING, false, `\0${sig.toString('binary')}`),
  ]);
  const b64 = Buffer.from(asn1.toDer(csr).getBytes(), 'binary').toString('base64');
  return `-----BEGIN CERTIFICATE REQUEST-----\n${b64.match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE REQUEST-----\n`;
}
