import { type Static, Type } from '@sinclair/typebox';

const Device = {
  csr: Type.String({ minLength: 1, maxLength: 16_384, description: 'PKCS#10 CSR, PEM' }),
  model: Type.Optional(Type.String({ maxLength: 64 })),
  softwareVersion: Type.Optional(Type.String({ maxLength: 64 })),
};
const Serial = Type.String({ minLength: 1, maxLength: 64, pattern: '^[\\x21-\\x7e]+$' });

/**
 * Zero-touch proof of possession: the device's factory identity (a key made at manufacture, and
 * a certificate for it — from the manufacturer's CA, or self-signed when the pre-registration
 * names the device's public key) signs `autoEnrollmentProof(serialNumber, csr)`. The proof is
 * bound to the CSR, so a replayed proof only ever gets a certificate for the same device key.
 */
export const FactoryAttestation = Type.Object(
  {
    certificate: Type.String({
      minLength: 1,
      maxLength: 16_384,
      description:
        'the factory certificate (PEM), optionally followed by intermediate CA certificates up to the manufacturer CA (at most 4 in all)',
    }),
    signature: Type.String({
      minLength: 1,
      maxLength: 1_024,
      description:
        'base64 signature by the factory key over autoEnrollmentProof(serialNumber, csr): Ed25519, or SHA-256 with RSA (PKCS#1 v1.5) or ECDSA (DER)',
    }),
  },
  { additionalProperties: false },
);
export type FactoryAttestation = Static<typeof FactoryAttestation>;

/** The exact text a factory key signs for `method: "auto"` (UTF-8; `csr` is the request's field as sent). */
export function autoEnrollmentProof(serialNumber: string, csr: string): string {
  return `posagent-auto-enroll\nserial ${serialNumber}\n${csr}`;
}

/**
 * `POST /v1/enroll` — the agent-facing enrollment endpoint (no admin token). `code`: an enrollment
 * code typed or scanned (the code is the secret); `auto`: the device's serial, pre-registered in
 * the cloud, proven by the device's factory identity (`attestation`).
 */
export const EnrollRequest = Type.Union([
  Type.Object(
    {
      method: Type.Literal('code'),
      code: Type.String({ minLength: 1, maxLength: 64 }),
      serialNumber: Type.Optional(Type.String({ maxLength: 64 })),
      ...Device,
    },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      method: Type.Literal('auto'),
      serialNumber: Serial,
      attestation: Type.Optional(FactoryAttestation),
      ...Device,
    },
    { additionalProperties: false },
  ),
]);
export type EnrollRequest = Static<typeof EnrollRequest>;

export const EnrollResponse = Type.Object(
  {
    terminalId: Type.String(),
    locationId: Type.String(),
    name: Type.String(),
    certificate: Type.String({ description: 'client certificate, PEM' }),
    fleetCa: Type.String({ description: 'fleet CA certificate the agent pins, PEM' }),
    cloudUrl: Type.String({ description: 'https base URL of the cloud' }),
    dataPublicKey: Type.String({
      description: "the cloud's data public key (PEM): card data is sealed to it",
    }),
  },
  { additionalProperties: false },
);
export type EnrollResponse = Static<typeof EnrollResponse>;

/** Stable error codes of the enrollment endpoint. */
export const EnrollErrorCode = {
  invalidCode: 'invalid_code',
  codeExpired: 'code_expired',
  codeUsed: 'code_used',
  /** Support withdrew the code before it was used. */
  codeRevoked: 'code_revoked',
  rateLimited: 'rate_limited',
  invalidCsr: 'invalid_csr',
  invalidRequest: 'invalid_request',
  /**
   * `method: "auto"` refused: no pre-registration matches this serial and credential, the proof
   * is missing or wrong, or the serial was claimed. One code for all, so serials cannot be probed.
   */
  autoEnrollmentRefused: 'auto_enrollment_refused',
} as const;

/**
 * `POST /v1/pairings` — the device asks for an activation code to show; someone activates it in
 * the cloud (`POST /v1/terminals/activate`). The CSR goes with the request: the key stays here.
 */
export const PairingRequest = Type.Object(
  { serialNumber: Type.Optional(Type.String({ maxLength: 64 })), ...Device },
  { additionalProperties: false },
);
export type PairingRequest = Static<typeof PairingRequest>;
export const PairingResponse = Type.Object(
  {
    pairingId: Type.String(),
    /** Only the device that asked knows it: it is needed to collect the certificate. */
    pairingSecret: Type.String(),
    activationCode: Type.String({ description: 'shown on the device, typed in the cloud' }),
    expiresAt: Type.String(),
    pollIntervalMs: Type.Integer({ minimum: 100 }),
  },
  { additionalProperties: false },
);
export type PairingResponse = Static<typeof PairingResponse>;

/** `POST /v1/pairings/{pairingId}/poll {pairingSecret}`; an expired pairing answers 410 code_expired. */
export const PairingPollRequest = Type.Object(
  { pairingSecret: Type.String({ minLength: 1, maxLength: 128 }) },
  { additionalProperties: false },
);
export const PairingPollResponse = Type.Union([
  Type.Object({ status: Type.Literal('pending'), expiresAt: Type.String() }, { additionalProperties: false }),
  Type.Object(
    { status: Type.Literal('activated'), enrollment: EnrollResponse },
    { additionalProperties: false },
  ),
]);
export type PairingPollResponse = Static<typeof PairingPollResponse>;

/** `GET /v1/fleet-ca` — fetched before it is trusted, then checked against the QR's fingerprint. */
export const FleetCaResponse = Type.Object(
  { certificate: Type.String(), fingerprint: Type.String({ description: 'SHA-256 of the DER, hex' }) },
  { additionalProperties: false },
);
export type FleetCaResponse = Static<typeof FleetCaResponse>;

/** What a QR code on the cloud's screen or on paper carries: `posagent://enroll?cloud=…&code=…&ca=…`. */
export interface QrPayload {
  cloud: string;
  code: string;
  /** SHA-256 fingerprint of the fleet CA certificate's DER, lowercase hex. */
  ca: string;
}

export function formatQrPayload(p: QrPayload): string {
  return `posagent://enroll?${new URLSearchParams({ cloud: p.cloud, code: p.code, ca: p.ca }).toString()}`;
}

/** Parses a QR payload; throws an Error naming what is wrong. */
export function parseQrPayload(text: string): QrPayload {
  let u: URL;
  try {
    u = new URL(text.trim());
  } catch {
    throw new Error('the QR payload is not a posagent://enroll URI');
  }
  if (u.protocol !== 'posagent:' || (u.hostname || u.pathname.replace(/^\/+/, '')) !== 'enroll')
    throw new Error(`the QR payload is not a posagent://enroll URI (got ${u.protocol}//${u.hostname})`);
  const cloud = u.searchParams.get('cloud') ?? '';
  const code = u.searchParams.get('code') ?? '';
  const ca = (u.searchParams.get('ca') ?? '').toLowerCase().replace(/:/g, '');
  if (!/^https:\/\//.test(cloud)) throw new Error('the QR payload has no https cloud URL');
  if (!code) throw new Error('the QR payload has no enrollment code');
  if (!/^[0-9a-f]{64}$/.test(ca)) throw new Error('the QR payload has no SHA-256 CA fingerprint');
  return { cloud, code, ca };
}
