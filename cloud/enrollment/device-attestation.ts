import { createPublicKey, type KeyObject, verify, X509Certificate } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  BasicConstraints,
  Certificate,
  id_ce_basicConstraints,
  id_ce_nameConstraints,
} from '@peculiar/asn1-x509';
import { autoEnrollmentProof, type FactoryAttestation } from '../../protocol/enrollment.js';

/**
 * Checks a zero-touch proof of possession: the factory certificate (chain) the device sent, and
 * its signature over `autoEnrollmentProof(serial, csr)`, against what the pre-registration trusts
 * — the device's own public key, or a manufacturer CA (the chain must lead to it and the leaf must
 * name the serial). Every key is size-checked before any signature is verified with it: nothing
 * here does unbounded work for an unauthenticated caller. Returns the reason on failure (for the
 * operator's log; the device only ever hears one refusal).
 */
export interface AttestationTrust {
  devicePublicKey: string | null;
  manufacturerCa: X509Certificate | null;
}

export type AttestationResult = { ok: true } | { ok: false; reason: string };

const MAX_CHAIN = 4;

/** Keys a factory identity may use: RSA 2048–4096 (e = 65537), EC P-256/P-384, Ed25519. */
export function acceptableKey(key: KeyObject): string | null {
  const d = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case 'rsa': {
      const bits = d.modulusLength ?? 0;
      if (![2048, 3072, 4096].includes(bits)) return `RSA-${bits} is not accepted (2048, 3072 or 4096)`;
      if (d.publicExponent !== 65537n) return 'an RSA exponent other than 65537 is not accepted';
      return null;
    }
    case 'ec':
      return d.namedCurve === 'prime256v1' || d.namedCurve === 'secp384r1'
        ? null
        : `EC curve ${d.namedCurve} is not accepted (P-256 or P-384)`;
    case 'ed25519':
      return null;
    default:
      return `${key.asymmetricKeyType} keys are not accepted`;
  }
}

export function splitPemChain(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

/** The serial a certificate subject names: its serialNumber attribute, else its CN. */
export function subjectSerialOf(cert: X509Certificate): string | null {
  const fields = new Map<string, string>();
  for (const line of cert.subject.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) fields.set(line.slice(0, i).trim(), line.slice(i + 1).trim());
  }
  return fields.get('serialNumber') || fields.get('CN') || null;
}

/** A certificate's basicConstraints (cA, pathLenConstraint) and whether it carries name constraints. */
function constraintsOf(c: X509Certificate): {
  ca: boolean;
  pathLen: number | null;
  nameConstraints: boolean;
} {
  const cert = AsnConvert.parse(c.raw, Certificate);
  let ca = false;
  let pathLen: number | null = null;
  let nameConstraints = false;
  for (const e of cert.tbsCertificate.extensions ?? []) {
    if (e.extnID === id_ce_basicConstraints) {
      const bc = AsnConvert.parse(e.extnValue.buffer, BasicConstraints);
      ca = bc.cA;
      pathLen = bc.pathLenConstraint ?? null;
    } else if (e.extnID === id_ce_nameConstraints) nameConstraints = true;
  }
  return { ca, pathLen, nameConstraints };
}

const within = (c: X509Certificate, nowMs: number) =>
  Date.parse(c.validFrom) <= nowMs && nowMs <= Date.parse(c.validTo);

/**
 * The proof on its own: the chain parses, every key is acceptable, and the leaf's key signed the
 * proof for this serial and CSR. Says nothing yet about whether the chain is trusted.
 */
export function checkProof(
  att: FactoryAttestation,
  serialNumber: string,
  csr: string,
): { ok: true; chain: X509Certificate[] } | { ok: false; reason: string } {
  const pems = splitPemChain(att.certificate);
  if (pems.length === 0) return { ok: false, reason: 'the attestation carries no certificate' };
  if (pems.length > MAX_CHAIN)
    return { ok: false, reason: `the attestation chain has more than ${MAX_CHAIN} certificates` };
  let chain: X509Certificate[];
  try {
    chain = pems.map((p) => new X509Certificate(p));
  } catch {
    return { ok: false, reason: 'an attestation certificate does not parse' };
  }
  for (const c of chain) {
    const bad = acceptableKey(c.publicKey);
    if (bad)
      return { ok: false, reason: `attestation certificate ${c.subject.replace(/\n/g, ', ')}: ${bad}` };
  }
  const leaf = chain[0]!;
  const algorithm = leaf.publicKey.asymmetricKeyType === 'ed25519' ? null : 'sha256';
  let signed = false;
  try {
    signed = verify(
      algorithm,
      Buffer.from(autoEnrollmentProof(serialNumber, csr)),
      leaf.publicKey,
      Buffer.from(att.signature, 'base64'),
    );
  } catch {
    signed = false;
  }
  if (!signed) return { ok: false, reason: "the proof is not signed by the factory certificate's key" };
  return { ok: true, chain };
}

export function verifyAttestation(
  att: FactoryAttestation,
  serialNumber: string,
  csr: string,
  trust: AttestationTrust,
  nowMs: number,
): AttestationResult {
  const proof = checkProof(att, serialNumber, csr);
  if (!proof.ok) return proof;
  const chain = proof.chain;
  const leaf = chain[0]!;
  if (trust.devicePublicKey) {
    let registered: KeyObject;
    try {
      registered = createPublicKey(trust.devicePublicKey);
    } catch {
      return { ok: false, reason: 'the pre-registered device public key does not parse' };
    }
    const a = registered.export({ type: 'spki', format: 'der' });
    const b = leaf.publicKey.export({ type: 'spki', format: 'der' });
    return a.equals(b)
      ? { ok: true }
      : { ok: false, reason: 'the factory key is not the pre-registered device key' };
  }
  const ca = trust.manufacturerCa;
  if (!ca) return { ok: false, reason: 'the pre-registration trusts no factory key or manufacturer CA' };
  if (subjectSerialOf(leaf) !== serialNumber)
    return {
      ok: false,
      reason: `the factory certificate names serial ${subjectSerialOf(leaf) ?? 'none'}, not ${serialNumber}`,
    };
  // RFC 5280 path length: a CA may have at most pathLenConstraint intermediate CAs below it.
  // Name constraints are not evaluated here, so a chain through a name-constrained CA is refused.
  const cas = [...chain.slice(1), ca];
  for (let k = 0; k < cas.length; k++) {
    let c: ReturnType<typeof constraintsOf>;
    try {
      c = constraintsOf(cas[k]!);
    } catch {
      return { ok: false, reason: `attestation CA ${k + 1} has extensions that do not parse` };
    }
    if (!c.ca) return { ok: false, reason: `attestation certificate ${k + 1} is not a CA` };
    if (c.pathLen !== null && k > c.pathLen)
      return {
        ok: false,
        reason: `attestation CA ${k + 1} allows ${c.pathLen} CA(s) below it, the chain has ${k}`,
      };
    if (c.nameConstraints)
      return { ok: false, reason: `attestation CA ${k + 1} has name constraints, which are not supported` };
  }
  for (let i = 0; i < chain.length; i++) {
    const c = chain[i]!;
    if (!within(c, nowMs))
      return { ok: false, reason: `attestation certificate ${i} is outside its validity period` };
    const issuer = chain[i + 1] ?? ca;
    if (i + 1 < chain.length && !issuer.ca)
      return { ok: false, reason: `attestation certificate ${i + 1} is not a CA` };
    if (!c.checkIssued(issuer) || !c.verify(issuer.publicKey))
      return {
        ok: false,
        reason: `attestation certificate ${i} is not issued by ${i + 1 < chain.length ? `certificate ${i + 1}` : 'the manufacturer CA'}`,
      };
  }
  return { ok: true };
}
