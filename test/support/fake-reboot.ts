import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './processes.js';

/**
 * The device's reboot, the one thing a test cannot own: a command that records each time it was
 * asked (with the boot id it was asked under and the host time in ms), and the boot id file a real
 * reboot would change (`reboot()` here: the test then kills and starts the agent).
 */
export interface FakeReboot {
  /** `--reboot-command`, `--boot-id-file` for `posagent run`. */
  flags: string[];
  /** What the command recorded, oldest first: `reboot <boot id> <ms>`. */
  calls(): string[];
  /** The boot id changes, as after a real reboot. */
  newBoot(id: string): void;
}

export function fakeReboot(): FakeReboot {
  const dir = tempDir('fakes');
  const bootIdFile = join(dir, 'boot_id');
  const log = join(dir, 'reboots.log');
  const command = join(dir, 'fake-reboot');
  writeFileSync(bootIdFile, 'boot-1\n');
  writeFileSync(command, `#!/bin/sh\necho "reboot $(cat ${bootIdFile}) $(date +%s%3N)" >> ${log}\n`);
  chmodSync(command, 0o755);
  return {
    flags: ['--reboot-command', command, '--boot-id-file', bootIdFile],
    calls: () => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').filter(Boolean) : []),
    newBoot: (id) => writeFileSync(bootIdFile, `${id}\n`),
  };
}
