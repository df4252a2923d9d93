import { stat } from 'node:fs/promises';

/**
 * The key-permission policy: the private key is the service's alone (0600, in a 0700 directory).
 * A key others could read may have been copied, so the daemon refuses to use it and diagnostics
 * fail the identity check; both ask this file.
 */
export const KEY_FILE_MODE = 0o600;
export const KEYS_DIR_MODE = 0o700;

/** True when group or others have any access to a file of this mode. */
export function exposedToOthers(mode: number): boolean {
  return (mode & 0o077) !== 0;
}

/** The mode as `0600`. */
export function octalMode(mode: number): string {
  return (mode & 0o777).toString(8).padStart(4, '0');
}

/** Throws when the private key is readable by others (the daemon will not start on it). */
export async function refuseExposedKey(keyFile: string): Promise<void> {
  const { mode } = await stat(keyFile);
  if (exposedToOthers(mode))
    throw new Error(
      `the private key ${keyFile} is mode ${octalMode(mode)}; it must be 0600. The agent will not use a key others can read: chmod 600 it, and reprovision (posagent reprovision) if it may have been copied`,
    );
}
