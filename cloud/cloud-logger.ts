import pino from 'pino';
import { CLOUD_REDACT_PATHS, REDACTED } from '../protocol/log-redaction.js';

/**
 * The cloud's logger: pino JSON on stderr, redacting like the agent's (protocol/log-redaction.ts)
 * plus the secrets only the cloud holds (admin token, webhook and pairing secrets, cookies).
 */
export function createCloudLogger(
  level: string,
  destination: pino.DestinationStream = pino.destination({ fd: 2, sync: true }),
): pino.Logger {
  return pino(
    {
      level,
      base: { service: 'posagent-cloud' },
      redact: { paths: CLOUD_REDACT_PATHS, censor: REDACTED },
    },
    destination,
  );
}
