import { ConfigLayer, DEFAULT_CONFIG, TerminalConfig } from './config-schema.js';
import {
  EnrollRequest,
  EnrollResponse,
  FleetCaResponse,
  PairingPollRequest,
  PairingPollResponse,
  PairingRequest,
  PairingResponse,
} from './enrollment.js';
import { Actions } from './messages.js';

/**
 * The JSON Schemas of the protocol as markdown, for docs/protocol.md. Pure; a test keeps the
 * document equal to this output, so the published schemas are always the ones the code checks.
 */
export const SCHEMA_SECTION_START =
  '<!-- schemas:start (generated from protocol/; run UPDATE_DOCS=1 npm test to refresh) -->';
export const SCHEMA_SECTION_END = '<!-- schemas:end -->';

function block(title: string, schema: unknown): string {
  return `#### ${title}\n\n\`\`\`json\n${JSON.stringify(schema, null, 2)}\n\`\`\`\n`;
}

export function schemaSection(): string {
  const parts: string[] = [SCHEMA_SECTION_START, ''];
  for (const [name, spec] of Object.entries(Actions)) {
    const dir = spec.direction === 'agentToCloud' ? 'agent → cloud' : 'cloud → agent';
    parts.push(`### ${name} (${dir})\n`);
    parts.push(block(`${name} request`, spec.request));
    parts.push(block(`${name} response`, spec.response));
  }
  parts.push('### Enrollment (`POST /v1/enroll`)\n');
  parts.push(block('EnrollRequest', EnrollRequest));
  parts.push(block('EnrollResponse', EnrollResponse));
  parts.push('### Pairing (`POST /v1/pairings`, `POST /v1/pairings/{pairingId}/poll`)\n');
  parts.push(block('PairingRequest', PairingRequest));
  parts.push(block('PairingResponse', PairingResponse));
  parts.push(block('PairingPollRequest', PairingPollRequest));
  parts.push(block('PairingPollResponse', PairingPollResponse));
  parts.push('### Fleet CA for QR enrollment (`GET /v1/fleet-ca`)\n');
  parts.push(block('FleetCaResponse', FleetCaResponse));
  parts.push('### Terminal configuration\n');
  parts.push(block('TerminalConfig (what ApplyConfig carries; the agent checks it whole)', TerminalConfig));
  parts.push(
    block('ConfigLayer (a location template or a terminal override; every field optional)', ConfigLayer),
  );
  parts.push(
    block(
      'Defaults (the bottom layer; the reference cloud sets agent.heartbeatIntervalSec and pingIntervalSec from its flags)',
      DEFAULT_CONFIG,
    ),
  );
  parts.push(SCHEMA_SECTION_END);
  return parts.join('\n');
}
