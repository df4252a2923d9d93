import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate, type Name, type Time } from '@peculiar/asn1-x509';

/**
 * A strict X.509 check for certificates the cloud issues, the way strict parsers (Go's
 * crypto/x509, webpki, BoringSSL's) judge them:
 *
 * - the DER parses against the RFC 5280 ASN.1 schema (@peculiar/asn1-x509) and re-encodes to the
 *   same bytes (DER, not BER);
 * - every name attribute is a PrintableString holding only PrintableString characters, or a
 *   UTF8String (RFC 5280 §4.1.2.4 for new certificates); no Teletex/Universal/BMP strings;
 * - validity dates use UTCTime through 2049 and GeneralizedTime from 2050 (§4.1.2.5);
 * - the serial is positive and at most 20 octets (§4.1.2.2); v3 when there are extensions; the
 *   outer and inner signature algorithms agree;
 * - node:crypto loads it, and given the issuing CA: it is issued by it and verifies with its key;
 * - `openssl verify -x509_strict` accepts the chain.
 *
 * Returns the problems found; an empty list means the certificate passed.
 */
const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;

function nameProblems(what: string, name: Name): string[] {
  const out: string[] = [];
  for (const rdn of name) {
    for (const atv of rdn) {
      const v = atv.value;
      if (v.printableString !== undefined) {
        if (!PRINTABLE.test(v.printableString))
          out.push(
            `${what} ${atv.type}: PrintableString "${v.printableString}" has characters outside its set`,
          );
      } else if (v.utf8String !== undefined) {
        // UTF8String: fine.
      } else if (v.ia5String !== undefined) {
        if (atv.type !== '1.2.840.113549.1.9.1')
          out.push(`${what} ${atv.type}: IA5String is only for emailAddress`);
      } else {
        out.push(`${what} ${atv.type}: neither PrintableString nor UTF8String`);
      }
    }
  }
  return out;
}

function timeProblems(what: string, t: Time): string[] {
  const date = t.getTime();
  const year = date.getUTCFullYear();
  if (year < 2050 && t.utcTime === undefined) return [`${what} before 2050 must be UTCTime`];
  if (year >= 2050 && t.generalTime === undefined) return [`${what} from 2050 must be GeneralizedTime`];
  return [];
}

export function strictX509Problems(certPem: string, caPem?: string): string[] {
  const problems: string[] = [];
  const m = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----/.exec(certPem);
  if (!m) return ['not a PEM certificate'];
  const der = Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64');
  let cert: Certificate;
  try {
    cert = AsnConvert.parse(der, Certificate);
  } catch (err) {
    return [`DER does not parse as an X.509 certificate: ${(err as Error).message}`];
  }
  if (!Buffer.from(AsnConvert.serialize(cert)).equals(der)) problems.push('not DER: re-encoding differs');
  const tbs = cert.tbsCertificate;
  problems.push(...nameProblems('subject', tbs.subject), ...nameProblems('issuer', tbs.issuer));
  problems.push(
    ...timeProblems('notBefore', tbs.validity.notBefore),
    ...timeProblems('notAfter', tbs.validity.notAfter),
  );
  const serial = Buffer.from(tbs.serialNumber);
  if (serial.length > 20) problems.push(`serial is ${serial.length} octets (at most 20)`);
  if ((serial[0]! & 0x80) !== 0 || serial.every((b) => b === 0)) problems.push('serial is not positive');
  if ((tbs.extensions?.length ?? 0) > 0 && tbs.version !== 2)
    problems.push('extensions in a non-v3 certificate');
  if (tbs.signature.algorithm !== cert.signatureAlgorithm.algorithm)
    problems.push('signature algorithm differs between the certificate and its TBS part');
  let x: X509Certificate;
  try {
    x = new X509Certificate(der);
  } catch (err) {
    problems.push(`node:crypto does not load it: ${(err as Error).message}`);
    return problems;
  }
  if (caPem) {
    const ca = new X509Certificate(caPem);
    if (!x.checkIssued(ca)) problems.push('not issued by the given CA (names or key identifiers differ)');
    if (!x.verify(ca.publicKey)) problems.push("signature does not verify with the CA's key");
    const dir = mkdtempSync(join(tmpdir(), 'posagent-x509-'));
    try {
      writeFileSync(join(dir, 'ca.pem'), caPem);
      writeFileSync(join(dir, 'cert.pem'), certPem);
      execFileSync(
        'openssl',
        ['verify', '-x509_strict', '-CAfile', join(dir, 'ca.pem'), join(dir, 'cert.pem')],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
    } catch (err) {
      const e = err as { stdout?: Buffer; stderr?: Buffer; message: string };
      problems.push(
        `openssl verify -x509_strict refused it: ${(e.stdout?.toString() ?? '') + (e.stderr?.toString() ?? e.message)}`.trim(),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return problems;
}
