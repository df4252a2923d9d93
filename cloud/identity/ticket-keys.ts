import { hkdfSync, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeSecretFile } from './secret-files.js';

/**
 * TLS session ticket keys: what lets an agent that reconnects (after a cloud restart, a network
 * blip, a renewal) resume its TLS session instead of a full handshake — no certificate chain
 * sent, no signature made or verified, just the key exchange.
 *
 * One secret in the data dir (`ticket-keys.key`, 256 random bits, 0600, written like the CA key
 * through files/atomic-file.ts), made once. The ticket key in use is derived from it for the
 * current period (HKDF-SHA-256, `period N`): every instance that shares the data dir (or a copy
 * of the file) uses the same key at the same time without talking to the others, a restart keeps
 * it, and it rotates by itself at each period boundary — a stolen ticket key opens only the
 * sessions of its period. Node keeps one ticket key at a time, so a ticket from the previous
 * period makes one full handshake. Deleting the file rotates the secret itself (at the next start).
 */
export const TICKET_KEY_FILE = 'ticket-keys.key';
export const TICKET_KEY_PERIOD_MS = 24 * 3_600_000;

export interface TicketKeys {
  /** The 48-byte key for node:tls (`ticketKeys`, `setTicketKeys`) at `nowMs`. */
  keyAt(nowMs: number): Buffer;
  /** When the key in use at `nowMs` is replaced. */
  nextRotationAt(nowMs: number): number;
  periodMs: number;
}

export function ticketKeysFrom(secret: Buffer, periodMs = TICKET_KEY_PERIOD_MS): TicketKeys {
  const period = (nowMs: number) => Math.floor(nowMs / periodMs);
  return {
    periodMs,
    keyAt: (nowMs) =>
      Buffer.from(hkdfSync('sha256', secret, 'posagent tls ticket keys', `period ${period(nowMs)}`, 48)),
    nextRotationAt: (nowMs) => (period(nowMs) + 1) * periodMs,
  };
}

/** Reads the ticket secret from the data dir, making it on first start (exclusive: two instances starting at once agree). */
export async function loadOrCreateTicketKeys(
  dir: string,
  periodMs = TICKET_KEY_PERIOD_MS,
): Promise<TicketKeys> {
  const file = join(dir, TICKET_KEY_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    try {
      await writeSecretFile(file, `${randomBytes(32).toString('hex')}\n`, 0o600, { exclusive: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    text = await readFile(file, 'utf8');
  }
  const secret = Buffer.from(text.trim(), 'hex');
  if (secret.length < 32)
    throw new Error(`${file} does not hold a ticket secret (64 hex digits); delete it to make a new one`);
  return ticketKeysFrom(secret, periodMs);
}
