import { type Static, Type } from '@sinclair/typebox';

/** `POST /v1/enroll` — the agent-facing enrollment endpoint (no admin token; the code is the secret). */
export const EnrollRequest = Type.Object(
  {
    method: Type.Literal('code'),
    code: Type.String({ minLength: 1, maxLength: 64 }),
    csr: Type.String({ minLength: 1, maxLength: 16_384, description: 'PKCS#10 CSR, PEM' }),
    serialNumber: Type.Optional(Type.String({ maxLength: 64 })),
    model: Type.Optional(Type.String({ maxLength: 64 })),
    softwareVersion: Type.Optional(Type.String({ maxLength: 64 })),
  },
  { additionalProperties: false },
);
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
  rateLimited: 'rate_limited',
  invalidCsr: 'invalid_csr',
  invalidRequest: 'invalid_request',
} as const;
