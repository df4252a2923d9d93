import { createHash, createHmac, randomBytes, randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localApiRequest } from '../../agent/local-api/local-api-client.js';
import { type Cloud, enrollAgent, startAgent, startCloud, waitForLink } from '../support/processes.js';

/**
 * Issue 16: nothing in the agent's store can confirm a guess of a card number. An attacker who
 * copies agent.db (and its WAL) and knows a card's BIN and last four digits tries every middle
 * digit string that passes Luhn against every digest in the files, plain and keyed with every
 * value the store holds. Until this issue the store kept an HMAC over the request, card number
 * included, keyed with a secret in the same file: this search found the PAN in seconds.
 */

function luhnOk(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

/** A 16-digit PAN with the given BIN and last four whose middle makes it pass Luhn. */
function panWith(bin: string, last4: string): string {
  for (;;) {
    const middle = String(Math.floor(Math.random() * 1e6)).padStart(6, '0');
    if (luhnOk(bin + middle + last4)) return bin + middle + last4;
  }
}

interface Sale {
  id: string;
  amount: number;
  currency: string;
  createdAt?: string;
  card: { pan: string; expiry: string };
}

/** Every file of the store (agent.db, -wal, -shm) as bytes. */
function storeFiles(stateDir: string): Buffer[] {
  return readdirSync(stateDir)
    .filter((f) => f.startsWith('agent.db'))
    .map((f) => readFileSync(join(stateDir, f)));
}

/**
 * Values the store holds that could key a hash or be a binary digest: every BLOB, and every TEXT
 * that looks like key material (hex or base64 of 16+ bytes) — as text and decoded.
 */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function storedValues(dbFile: string): Buffer[] {
  const db = new Database(dbFile, { readonly: true });
  try {
    const values: Buffer[] = [];
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as {
      name: string;
    }[];
    for (const { name } of tables) {
      for (const row of db.prepare(`SELECT * FROM "${name}"`).all() as Record<string, unknown>[]) {
        for (const v of Object.values(row)) {
          if (Buffer.isBuffer(v) && v.length >= 8) values.push(v);
          else if (typeof v === 'string' && UUID.test(v))
            continue; // the POS app's ids, not key material
          else if (typeof v === 'string' && /^[0-9a-fA-F]{32,128}$/.test(v))
            values.push(Buffer.from(v), Buffer.from(v, 'hex'));
          else if (typeof v === 'string' && /^[A-Za-z0-9+/_-]{22,88}={0,2}$/.test(v))
            values.push(Buffer.from(v), Buffer.from(v, 'base64'));
        }
      }
    }
    return values;
  } finally {
    db.close();
  }
}

/** Every hex digest-length string in the raw bytes (at every alignment of a hex run), and every stored value as hex. */
function digestsIn(files: Buffer[], values: Buffer[]): Set<string> {
  const found = new Set<string>();
  for (const f of files)
    for (const m of f.toString('latin1').matchAll(/[0-9a-f]{32,}/g))
      for (const len of [32, 40, 64])
        for (let i = 0; i + len <= m[0].length; i++) found.add(m[0].slice(i, i + len));
  for (const v of values) found.add(v.toString('hex'));
  return found;
}

/**
 * Tries every Luhn-valid middle for the sale's BIN and last four; returns the PANs that some digest
 * in the files confirms (plain SHA-256/SHA-1/MD5 or HMAC-SHA256 under any candidate key, over the
 * PAN alone, PAN|expiry, the card as JSON, and the request as the old code hashed it).
 */
function bruteForce(stateDir: string, sale: Sale): string[] {
  const values = storedValues(join(stateDir, 'agent.db'));
  const digests = digestsIn(storeFiles(stateDir), values);
  const keys = values.filter((v) => v.length >= 16 && v.length <= 128);
  const bin = sale.card.pan.slice(0, 6);
  const last4 = sale.card.pan.slice(-4);
  const found: string[] = [];
  for (let m = 0; m < 1e6; m++) {
    const pan = bin + String(m).padStart(6, '0') + last4;
    if (!luhnOk(pan)) continue;
    const card = { pan, expiry: sale.card.expiry };
    const forms = [
      pan,
      `${pan}|${sale.card.expiry}`,
      JSON.stringify([sale.id, sale.amount, sale.currency, sale.createdAt ?? null, card]),
    ];
    let hit = false;
    for (const form of forms) {
      const tries = [
        createHash('sha256').update(form).digest('hex'),
        createHash('sha1').update(form).digest('hex'),
        createHash('md5').update(form).digest('hex'),
        ...keys.map((k) => createHmac('sha256', k).update(form).digest('hex')),
      ];
      if (tries.some((d) => digests.has(d))) hit = true;
    }
    if (hit) found.push(pan);
  }
  return found;
}

describe('card data in the agent store', () => {
  let cloud: Cloud;
  beforeAll(async () => {
    cloud = await startCloud();
  });
  afterAll(async () => cloud.stop());

  it('a brute force of the middle digits over agent.db and its WAL confirms nothing; idempotency still answers 200 / 409', async () => {
    const a = await enrollAgent(cloud);
    const socket = `${a.dirs.runtimeDir}/api.sock`;
    const post = (body: unknown) =>
      localApiRequest<{ id: string; error?: { code: string } }>(socket, 'POST', '/v1/transactions', body);
    const sale: Sale = {
      id: randomUUID(),
      amount: 4200,
      currency: 'EUR',
      createdAt: '2026-12-01T10:00:00.000Z',
      card: { pan: panWith('411111', '4242'), expiry: '12/29' },
    };
    let agent = startAgent(a.dirs);
    try {
      await waitForLink(a.dirs);
      expect((await post(sale)).status).toBe(201);
      // Idempotency on what is not secret: the same request → 200; another amount, another
      // currency, another card (last four) → 409 idempotency_conflict.
      expect((await post(sale)).status).toBe(200);
      for (const other of [
        { ...sale, amount: 4201 },
        { ...sale, currency: 'USD' },
        { ...sale, card: { ...sale.card, pan: panWith('411111', '1881') } },
        { ...sale, card: undefined },
      ]) {
        const r = await post(other);
        expect(r.status).toBe(409);
        expect(r.body.error?.code).toBe('idempotency_conflict');
      }
      for (let i = 0; i < 5; i++)
        expect(
          (
            await post({
              id: randomUUID(),
              amount: 100 + i,
              currency: 'EUR',
              card: { pan: panWith('552000', '0007'), expiry: '01/30' },
            })
          ).status,
        ).toBe(201);
    } finally {
      agent.child.kill('SIGKILL'); // no clean close: whatever the WAL holds stays in it
      await agent.exited;
    }
    const dbFile = join(a.dirs.stateDir, 'agent.db');
    const files = storeFiles(a.dirs.stateDir);
    expect(files.some((f) => f.includes(Buffer.from(sale.card.pan)))).toBe(false);
    expect(files.some((f) => f.includes(Buffer.from(sale.card.pan.slice(6, 12))))).toBe(false);
    expect(bruteForce(a.dirs.stateDir, sale)).toEqual([]);

    // The search is real: a store as the old code left it (an HMAC of the request under a secret
    // kept beside it) gives the card number away.
    const secret = randomBytes(32);
    const legacy = createHmac('sha256', secret)
      .update(JSON.stringify([sale.id, sale.amount, sale.currency, sale.createdAt, sale.card]))
      .digest('hex');
    const db = new Database(dbFile);
    db.prepare('UPDATE transactions SET body_hash = ? WHERE id = ?').run(legacy, sale.id);
    db.prepare("INSERT OR REPLACE INTO device_secrets (name, value) VALUES ('idempotency', ?)").run(secret);
    db.close();
    expect(bruteForce(a.dirs.stateDir, sale)).toEqual([sale.card.pan]);

    // This version erases such data when it opens the store, from the file and the WAL alike.
    agent = startAgent(a.dirs);
    try {
      await waitForLink(a.dirs);
      // The erased row still answers a repeat (compared on what it keeps in clear).
      expect((await post(sale)).status).toBe(200);
    } finally {
      agent.child.kill('SIGKILL');
      await agent.exited;
    }
    const after = storeFiles(a.dirs.stateDir);
    expect(after.some((f) => f.includes(Buffer.from(legacy)))).toBe(false);
    expect(after.some((f) => f.includes(secret))).toBe(false);
    expect(bruteForce(a.dirs.stateDir, sale)).toEqual([]);
  }, 120_000);
});
