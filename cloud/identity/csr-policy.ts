import { createPublicKey, type KeyObject, verify } from 'node:crypto';
import { CertificationRequest } from '@peculiar/asn1-csr';
import { AsnConvert } from '@peculiar/asn1-schema';

/**
 * What the cloud accepts in a CSR, checked in this order so that no unbounded work happens before
 * the key is known to be one the fleet issues for:
 *
 * 1. the PEM decodes and the DER parses as a PKCS#10 request (linear in its size, ≤ 16 KB);
 * 2. its public key is parsed by node:crypto (OpenSSL) and must be one of {@link CSR_KEY_POLICY}:
 *    ECDSA on P-256 or P-384 (what agents make since issue 23), or RSA 2048/3072/4096 with
 *    e = 65537 (identities enrolled before) — anything else (a 16,384-bit modulus, a huge
 *    exponent, DSA, Ed25519, another curve) is refused here, before any signature math;
 * 3. its self-signature is verified by node:crypto (native, microseconds for these sizes).
 *
 * Pure: no I/O, no clock. A refusal is a {@link CsrRejectedError} whose message says why.
 */
export class CsrRejectedError extends Error {
  override readonly name = 'CsrRejectedError';
}

/** The key types and sizes the fleet issues certificates for. */
export const CSR_KEY_POLICY = {
  rsa: { modulusBits: [2048, 3072, 4096], publicExponent: 65537n },
  /** Named curves (OpenSSL names): P-256, which agents make, and P-384. */
  ec: { curves: ['prime256v1', 'secp384r1'] },
} as const;

const POLICY_TEXT = 'ECDSA P-256 or P-384, or RSA 2048, 3072 or 4096 bits with e = 65537';

/** Signature algorithms a CSR may be signed with (RSA PKCS#1 v1.5 and ECDSA, SHA-2 only). */
const SIGNATURE_ALGORITHMS: Record<string, { hash: string; key: 'rsa' | 'ec' }> = {
  '1.2.840.113549.1.1.11': { hash: 'sha256', key: 'rsa' },
  '1.2.840.113549.1.1.12': { hash: 'sha384', key: 'rsa' },
  '1.2.840.113549.1.1.13': { hash: 'sha512', key: 'rsa' },
  '1.2.840.10045.4.3.2': { hash: 'sha256', key: 'ec' },
  '1.2.840.10045.4.3.3': { hash: 'sha384', key: 'ec' },
};

export interface AcceptedCsr {
  publicKey: KeyObject;
  /** The public key as SPKI PEM (what the CA signs into the certificate). */
  publicKeyPem: string;
  keyType: 'rsa' | 'ec';
  /** RSA: the modulus size. */
  modulusBits?: number;
  /** EC: the named curve (OpenSSL name). */
  curve?: string;
}

const PEM =
  /^-----BEGIN (NEW )?CERTIFICATE REQUEST-----\r?\n([A-Za-z0-9+/=\r\n]+)-----END (NEW )?CERTIFICATE REQUEST-----\s*$/;

function derOf(csrPem: string): Buffer {
  const m = PEM.exec(csrPem.trim());
  if (!m) throw new CsrRejectedError('CSR is not a PEM PKCS#10 certification request');
  return Buffer.from(m[2]!.replace(/\s+/g, ''), 'base64');
}

/** Parses, checks the key against the policy, verifies the self-signature; throws CsrRejectedError. */
export function acceptCsr(csrPem: string): AcceptedCsr {
  const der = derOf(csrPem);
  let csr: CertificationRequest;
  try {
    csr = AsnConvert.parse(der, CertificationRequest);
  } catch {
    throw new CsrRejectedError('CSR is not a PEM PKCS#10 certification request (its DER does not parse)');
  }
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({
      key: Buffer.from(AsnConvert.serialize(csr.certificationRequestInfo.subjectPKInfo)),
      format: 'der',
      type: 'spki',
    });
  } catch {
    throw new CsrRejectedError('CSR public key does not parse');
  }
  const details = publicKey.asymmetricKeyDetails ?? {};
  const type = publicKey.asymmetricKeyType;
  let accepted: Pick<AcceptedCsr, 'keyType' | 'modulusBits' | 'curve'>;
  if (type === 'ec') {
    const curve = details.namedCurve ?? 'unknown';
    if (!(CSR_KEY_POLICY.ec.curves as readonly string[]).includes(curve))
      throw new CsrRejectedError(
        `CSR key is EC on curve ${curve}, which this fleet does not support: use ${POLICY_TEXT}`,
      );
    accepted = { keyType: 'ec', curve };
  } else if (type === 'rsa') {
    const bits = details.modulusLength ?? 0;
    if (!(CSR_KEY_POLICY.rsa.modulusBits as readonly number[]).includes(bits))
      throw new CsrRejectedError(
        `CSR key is RSA with ${bits} bits: this fleet accepts 2048, 3072 or 4096 bits (e = 65537), or ECDSA P-256 or P-384`,
      );
    if (details.publicExponent !== CSR_KEY_POLICY.rsa.publicExponent)
      throw new CsrRejectedError(
        'CSR key has an RSA public exponent other than 65537, which this fleet refuses',
      );
    accepted = { keyType: 'rsa', modulusBits: bits };
  } else {
    throw new CsrRejectedError(`CSR key type ${type ?? 'unknown'} is not supported: use ${POLICY_TEXT}`);
  }
  const alg = SIGNATURE_ALGORITHMS[csr.signatureAlgorithm.algorithm];
  if (alg?.key !== accepted.keyType)
    throw new CsrRejectedError(
      `CSR is signed with algorithm ${csr.signatureAlgorithm.algorithm}: use ${accepted.keyType === 'ec' ? 'ecdsa-with-SHA256' : 'sha256WithRSAEncryption'}`,
    );
  const signed = csr.certificationRequestInfoRaw;
  if (!signed) throw new CsrRejectedError('CSR has no request info to verify');
  let ok = false;
  try {
    ok = verify(alg.hash, Buffer.from(signed), publicKey, Buffer.from(csr.signature));
  } catch {
    ok = false;
  }
  if (!ok) throw new CsrRejectedError('CSR signature does not verify');
  return {
    publicKey,
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    ...accepted,
  };
}
