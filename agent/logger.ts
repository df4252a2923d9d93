import pino from 'pino';
import { REDACT_PATHS, REDACTED } from '../protocol/log-redaction.js';

/** Paths the logger never writes: keys, tokens, certificates' private parts, card data. */
export { REDACT_PATHS };

export type Logger = pino.Logger;

export function createLogger(
  level: string,
  destination: pino.DestinationStream = pino.destination({ fd: 1, sync: true }),
): Logger {
  return pino(
    { level, base: { service: 'posagent' }, redact: { paths: REDACT_PATHS, censor: REDACTED } },
    destination,
  );
}
