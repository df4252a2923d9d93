import { createHash, type KeyObject, sign } from 'node:crypto';
import { CertificationRequest, CertificationRequestInfo } from '@peculiar/asn1-csr';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import {
  AlgorithmIdentifier,
  AttributeTypeAndValue,
  AttributeValue,
  AuthorityKeyIdentifier,
  BasicConstraints,
  Certificate,
  ExtendedKeyUsage,
  Extension,
  Extensions,
  GeneralName,
  id_ce_authorityKeyIdentifier,
  id_ce_basicConstraints,
  id_ce_extKeyUsage,
  id_ce_keyUsage,
  id_ce_subjectAltName,
  id_ce_subjectKeyIdentifier,
  id_kp_clientAuth,
  id_kp_serverAuth,
  KeyIdentifier,
  KeyUsage,
  KeyUsageFlags,
  Name,
  RelativeDistinguishedName,
  SubjectAlternativeName,
  SubjectKeyIdentifier,
  SubjectPublicKeyInfo,
  TBSCertificate,
  Validity,
  Version,
} from '@peculiar/asn1-x509';

/**
 * X.509 certificates and PKCS#10 requests, encoded with the RFC 5280 / RFC 2986 ASN.1 schemas of
 * @peculiar/asn1-x509 and @peculiar/asn1-csr and signed with node:crypto (OpenSSL): ECDSA P-256 /
 * P-384 with SHA-256 / SHA-384, or RSA PKCS#1 v1.5 with SHA-256 (the fleet CA of a cloud created
 * before P-256, and the RSA identities still in the field). The one encoder both sides use: the
 * agent for its CSR, the cloud for its CA, its server certificate and every client certificate.
 *
 * Names are UTF8String (a PrintableString may not hold the `_` of `term_…`) unless an attribute
 * asks for PrintableString (a factory certificate's serialNumber); dates are UTCTime through 2049,
 * GeneralizedTime after. Pure: no I/O, no clock.
 */

export interface NameAttribute {
  /** The attribute type's OID (see {@link OID}). */
  type: string;
  value: string;
  /** Encode as PrintableString rather than UTF8String. */
  printable?: boolean;
}

export const OID = {
  commonName: '2.5.4.3',
  serialNumber: '2.5.4.5',
  organizationName: '2.5.4.10',
} as const;

const SIG = {
  ecdsaSha256: '1.2.840.10045.4.3.2',
  ecdsaSha384: '1.2.840.10045.4.3.3',
  rsaSha256: '1.2.840.113549.1.1.11',
} as const;

/** The DER encoding of ASN.1 NULL: the parameters of an RSA signature algorithm. */
const NULL_PARAMS = new Uint8Array([0x05, 0x00]).buffer;

export function encodeName(attributes: readonly NameAttribute[]): Name {
  return new Name(
    attributes.map(
      (a) =>
        new RelativeDistinguishedName([
          new AttributeTypeAndValue({
            type: a.type,
            value: new AttributeValue(a.printable ? { printableString: a.value } : { utf8String: a.value }),
          }),
        ]),
    ),
  );
}

/** How a key signs: the algorithm identifier written into the certificate and node's hash name. */
function signatureOf(key: KeyObject): { algorithm: AlgorithmIdentifier; hash: string } {
  if (key.asymmetricKeyType === 'ec') {
    const p384 = key.asymmetricKeyDetails?.namedCurve === 'secp384r1';
    return {
      algorithm: new AlgorithmIdentifier({ algorithm: p384 ? SIG.ecdsaSha384 : SIG.ecdsaSha256 }),
      hash: p384 ? 'sha384' : 'sha256',
    };
  }
  if (key.asymmetricKeyType === 'rsa')
    return {
      algorithm: new AlgorithmIdentifier({ algorithm: SIG.rsaSha256, parameters: NULL_PARAMS }),
      hash: 'sha256',
    };
  throw new Error(`cannot sign certificates with a ${key.asymmetricKeyType} key`);
}

function spkiOf(publicKey: KeyObject): SubjectPublicKeyInfo {
  return AsnConvert.parse(publicKey.export({ type: 'spki', format: 'der' }), SubjectPublicKeyInfo);
}

/** The key identifier RFC 5280 §4.2.1.2 (1) names: SHA-1 of the subjectPublicKey bits. */
export function keyIdentifier(publicKey: KeyObject): Buffer {
  return createHash('sha1')
    .update(Buffer.from(spkiOf(publicKey).subjectPublicKey))
    .digest();
}

function extension(extnID: string, value: object, critical = false): Extension {
  return new Extension({ extnID, critical, extnValue: new OctetString(AsnConvert.serialize(value)) });
}

/** The extensions the fleet writes, each in its DER form. */
export const ext = {
  basicConstraints: (cA: boolean, pathLenConstraint?: number, critical = cA) =>
    extension(
      id_ce_basicConstraints,
      new BasicConstraints(pathLenConstraint === undefined ? { cA } : { cA, pathLenConstraint }),
      critical,
    ),
  /** Key usage for a CA, or for an end entity's key type (RSA keys also encipher, EC keys only sign). */
  keyUsage: (usage: 'ca' | 'ca-signing' | 'leaf', key?: KeyObject) => {
    let flags: number;
    if (usage === 'ca') flags = KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign;
    else if (usage === 'ca-signing')
      flags = KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign | KeyUsageFlags.digitalSignature;
    else
      flags =
        key?.asymmetricKeyType === 'rsa'
          ? KeyUsageFlags.digitalSignature | KeyUsageFlags.keyEncipherment
          : KeyUsageFlags.digitalSignature;
    return extension(id_ce_keyUsage, new KeyUsage(flags), true);
  },
  extKeyUsage: (usage: 'serverAuth' | 'clientAuth') =>
    extension(
      id_ce_extKeyUsage,
      new ExtendedKeyUsage([usage === 'serverAuth' ? id_kp_serverAuth : id_kp_clientAuth]),
    ),
  subjectAltName: (dns: readonly string[], ips: readonly string[]) =>
    extension(
      id_ce_subjectAltName,
      new SubjectAlternativeName([
        ...dns.map((d) => new GeneralName({ dNSName: d })),
        ...ips.map((ip) => new GeneralName({ iPAddress: ip })),
      ]),
    ),
  subjectKeyIdentifier: (publicKey: KeyObject) =>
    extension(id_ce_subjectKeyIdentifier, new SubjectKeyIdentifier(keyIdentifier(publicKey))),
  authorityKeyIdentifier: (id: Uint8Array) =>
    extension(
      id_ce_authorityKeyIdentifier,
      new AuthorityKeyIdentifier({ keyIdentifier: new KeyIdentifier(id) }),
    ),
};

export interface CertificateSpec {
  /** The subject: attributes to encode, or a name as another certificate encodes it. */
  subject: readonly NameAttribute[] | Name;
  /** The issuer; the subject when omitted (self-signed). */
  issuer?: readonly NameAttribute[] | Name;
  publicKey: KeyObject;
  /** The issuer's private key (the subject's own for a self-signed certificate). */
  signingKey: KeyObject;
  /** Positive, at most 20 octets, hex. */
  serialHex: string;
  notBefore: Date;
  notAfter: Date;
  extensions: Extension[];
}

const asName = (n: readonly NameAttribute[] | Name) => (n instanceof Name ? n : encodeName(n));

/** Builds and signs a v3 certificate; PEM. */
export function buildCertificate(spec: CertificateSpec): string {
  const sig = signatureOf(spec.signingKey);
  const subject = asName(spec.subject);
  const tbs = new TBSCertificate({
    version: Version.v3,
    serialNumber: arrayBuffer(
      Buffer.from(spec.serialHex.length % 2 ? `0${spec.serialHex}` : spec.serialHex, 'hex'),
    ),
    signature: sig.algorithm,
    issuer: spec.issuer ? asName(spec.issuer) : subject,
    validity: new Validity({ notBefore: spec.notBefore, notAfter: spec.notAfter }),
    subject,
    subjectPublicKeyInfo: spkiOf(spec.publicKey),
    extensions: new Extensions(spec.extensions),
  });
  const tbsDer = Buffer.from(AsnConvert.serialize(tbs));
  const signature = sign(sig.hash, tbsDer, spec.signingKey);
  const cert = new Certificate({
    tbsCertificate: tbs,
    signatureAlgorithm: sig.algorithm,
    signatureValue: arrayBuffer(signature),
  });
  return pem('CERTIFICATE', Buffer.from(AsnConvert.serialize(cert)));
}

/** A PKCS#10 request for `privateKey`'s public half, subject CN = `commonName`, signed by it; PEM. */
export function buildCsr(privateKey: KeyObject, publicKey: KeyObject, commonName: string): string {
  const sig = signatureOf(privateKey);
  const info = new CertificationRequestInfo({
    version: 0,
    subject: encodeName([{ type: OID.commonName, value: commonName }]),
    subjectPKInfo: spkiOf(publicKey),
  });
  const infoDer = Buffer.from(AsnConvert.serialize(info));
  const csr = new CertificationRequest({
    certificationRequestInfo: info,
    signatureAlgorithm: sig.algorithm,
    signature: arrayBuffer(sign(sig.hash, infoDer, privateKey)),
  });
  return pem('CERTIFICATE REQUEST', Buffer.from(AsnConvert.serialize(csr)));
}

/** A certificate's DER parsed against the RFC 5280 schema. */
export function parseCertificate(certPem: string): Certificate {
  const m = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----/.exec(certPem);
  if (!m) throw new Error('not a PEM certificate');
  return AsnConvert.parse(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'), Certificate);
}

/** The subjectKeyIdentifier a certificate carries, if any. */
export function subjectKeyIdentifierOf(cert: Certificate): Uint8Array | null {
  const e = cert.tbsCertificate.extensions?.find((x) => x.extnID === id_ce_subjectKeyIdentifier);
  if (!e) return null;
  return new Uint8Array(AsnConvert.parse(e.extnValue.buffer, SubjectKeyIdentifier).buffer);
}

/** A copy of `b` as a plain ArrayBuffer (what the schema classes hold). */
const arrayBuffer = (b: Buffer): ArrayBuffer => new Uint8Array(b).buffer;

function pem(label: string, der: Buffer): string {
  const b64 = der
    .toString('base64')
    .match(/.{1,64}/g)!
    .join('\n');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}
