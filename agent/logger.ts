import pino from 'pino';

/** Paths the logger never writes: keys, tokens, certificates' private parts, card data. */
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

export type Logger = pino.Logger;

export function createLogger(
  level: string,
  destination: pino.DestinationStream = pino.destination({ fd: 1, sync: true }),
): Logger {
  return pino(
    { level, base: { service: 'posagent' }, redact: { paths: REDACT_PATHS, censor: '[redacted]' } },
    destination,
  );
}
