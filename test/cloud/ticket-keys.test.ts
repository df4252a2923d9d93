import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  loadOrCreateTicketKeys,
  TICKET_KEY_FILE,
  TICKET_KEY_PERIOD_MS,
  ticketKeysFrom,
} from '../../cloud/identity/ticket-keys.js';

/**
 * Issue 23.2: the cloud's TLS ticket keys — one secret in the data dir (0600), the key of each
 * period derived from it: the same for every instance and after a restart, another in the next
 * period (rotation), and instances starting at once agree on the secret.
 */
describe('TLS ticket keys', () => {
  const dir = () => mkdtempSync(join(tmpdir(), 'posagent-tickets-'));
  const day = TICKET_KEY_PERIOD_MS;

  it('the key is 48 bytes, the same within a period, another in the next; rotation is at the period boundary', () => {
    const t = ticketKeysFrom(Buffer.alloc(32, 1));
    const at = 20_000 * day + 1000;
    expect(t.keyAt(at)).toHaveLength(48);
    expect(t.keyAt(at + day / 2).equals(t.keyAt(at))).toBe(true);
    expect(t.keyAt(at + day).equals(t.keyAt(at))).toBe(false);
    expect(t.nextRotationAt(at)).toBe(20_001 * day);
    // Another secret, another key.
    expect(ticketKeysFrom(Buffer.alloc(32, 2)).keyAt(at).equals(t.keyAt(at))).toBe(false);
  });

  it('made once, 0600, and kept: a restart and a second instance derive the same key', async () => {
    const d = dir();
    const [a, b] = await Promise.all([loadOrCreateTicketKeys(d), loadOrCreateTicketKeys(d)]);
    const file = join(d, TICKET_KEY_FILE);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8')).toMatch(/^[0-9a-f]{64}\n$/);
    const now = Date.now();
    expect(a.keyAt(now).equals(b.keyAt(now))).toBe(true);
    const restarted = await loadOrCreateTicketKeys(d);
    expect(restarted.keyAt(now).equals(a.keyAt(now))).toBe(true);
  });

  it('a file that holds no secret is refused with what to do, and left as it is', async () => {
    const d = dir();
    const file = join(d, TICKET_KEY_FILE);
    writeFileSync(file, 'not hex\n', { mode: 0o600 });
    await expect(loadOrCreateTicketKeys(d)).rejects.toThrow(
      /ticket-keys\.key does not hold a ticket secret \(64 hex digits\); delete it to make a new one/,
    );
    expect(readFileSync(file, 'utf8')).toBe('not hex\n');
  });
});
