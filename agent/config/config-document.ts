import type { TerminalConfig } from '../../protocol/config-schema.js';
import type { ConfigRejection } from '../agent-store.js';

/**
 * The applied config as the POS app and `posagent config` see it. `version: null` means nothing
 * was pushed yet and the built-in defaults apply. `lastRejected` tells why a newer push was refused.
 */
export interface ConfigDocument {
  version: number | null;
  appliedAt: string | null;
  config: TerminalConfig;
  lastRejected: ConfigRejection | null;
}

export function configDocument(
  current: { version: number | null; config: TerminalConfig; appliedAt: string | null },
  rejection: ConfigRejection | null,
): ConfigDocument {
  return {
    version: current.version,
    appliedAt: current.appliedAt,
    config: current.config,
    // Only a refusal newer than what runs is news; an old one was superseded.
    lastRejected:
      rejection && (current.version === null || rejection.version > current.version) ? rejection : null,
  };
}
