import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';

/** This boot's id (the kernel's, from the device settings' bootIdFile): a reboot action is settled by a new one. */
export function readBootId(file: string): string {
  try {
    const id = readFileSync(file, 'utf8').trim();
    if (id) return id.slice(0, 64);
  } catch {
    // no boot id source on this system: a random one per start still tells restarts apart
  }
  return randomUUID();
}
