import type { AgentPaths } from '../agent/settings.js';
import { type Identity, readIdentity } from '../identity/identity-store.js';
import { CommandError, ExitCode } from './output.js';

/** The terminal's identity, or exit 3 (not enrolled) — from the state dir, whether the daemon runs or not. */
export async function requireEnrolled(paths: AgentPaths): Promise<Identity> {
  const identity = await readIdentity(paths.stateDir);
  if (!identity)
    throw new CommandError(
      'not_enrolled',
      `this terminal is not enrolled (no identity in ${paths.stateDir})`,
      ExitCode.notEnrolled,
      'enroll it first: posagent enroll --code CODE (or --qr, --pair, --auto)',
    );
  return identity;
}
