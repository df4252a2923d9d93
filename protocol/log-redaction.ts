/**
 * Fields the logs of both processes never write (pino `redact` paths): keys, tokens, secrets,
 * certificate requests' private parts, card data. The agent's logger and the cloud's use this one
 * list; the cloud adds the secrets only it holds. Pure data.
 */
export const REDACT_PATHS = [
  'key',
  '*.key',
  'privateKey',
  '*.privateKey',
  'keyPem',
  '*.keyPem',
  'token',
  '*.token',
  'authorization',
  '*.authorization',
  'headers.authorization',
  'card',
  '*.card',
  'pan',
  '*.pan',
  'tls',
  '*.tls',
];

/** What only the cloud holds: the admin token, webhook and pairing secrets, cookies, sealed keys. */
export const CLOUD_REDACT_PATHS = [
  ...REDACT_PATHS,
  'adminToken',
  '*.adminToken',
  'secret',
  '*.secret',
  'pairingSecret',
  '*.pairingSecret',
  'secretHash',
  '*.secretHash',
  'headers.cookie',
  '*.headers.cookie',
  'headers["x-api-key"]',
  '*.headers["x-api-key"]',
  'ek',
  '*.ek',
  'dataPrivateKey',
  '*.dataPrivateKey',
];

export const REDACTED = '[redacted]';
