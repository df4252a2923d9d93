import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { exposedToOthers, octalMode, refuseExposedKey } from '../../identity/key-permissions.js';
import { tempDir } from '../support/processes.js';

/** The key-permission policy the daemon refuses on and the diagnostics check, on real files. */
describe('key permissions', () => {
  it('0600 is the service alone; any group or other bit exposes the key', () => {
    expect(exposedToOthers(0o100600)).toBe(false);
    expect(exposedToOthers(0o100400)).toBe(false);
    for (const mode of [0o640, 0o604, 0o660, 0o644, 0o610, 0o601]) expect(exposedToOthers(mode)).toBe(true);
    expect(octalMode(0o100640)).toBe('0640');
  });

  it('refuses a key file others can read, saying what to do; takes a 0600 one', async () => {
    const key = join(tempDir('keyperm'), 'client.key');
    writeFileSync(key, 'not a real key');
    chmodSync(key, 0o600);
    await expect(refuseExposedKey(key)).resolves.toBeUndefined();
    chmodSync(key, 0o644);
    await expect(refuseExposedKey(key)).rejects.toThrow(
      `the private key ${key} is mode 0644; it must be 0600. The agent will not use a key others can read: chmod 600 it, and reprovision (posagent reprovision) if it may have been copied`,
    );
  });
});
