import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AGENT_STORE_SCHEMA, AgentStore } from '../../agent/agent-store.js';
import { restoreStoreIfAsked, StoreSchemaRecord } from '../../agent/store-schema.js';
import type { Migration } from '../../protocol/sqlite-migrations.js';
import type { GuardResult, StoreSchemaNote } from '../../release/layout.js';
import { tempDir } from '../support/processes.js';

/**
 * A newer release's steps: this release's (already applied to the stores here, so never run again)
 * and its own after them. Its steps only declare themselves breaking: this release's code still has
 * to run on the store in the test, as the newer release's own code would.
 */
function newerRelease(extra: Migration[]): Migration[] {
  return [...Array.from({ length: AGENT_STORE_SCHEMA }, (_, i) => `SELECT ${i}`), ...extra];
}
const note = (dir: string) =>
  JSON.parse(readFileSync(join(dir, 'store-schema.json'), 'utf8')) as StoreSchemaNote;
const sale = (store: AgentStore, id: string) =>
  store.transactions.insert({
    id,
    amount: 100,
    currency: 'EUR',
    createdAt: '2026-12-02T07:00:00.000Z',
    storedAt: '2026-12-02T07:00:00.000Z',
    offline: true,
    bodyHash: 'h',
    sealedCard: null,
  });

/** Issue 24: what a rollback across a store migration needs from the agent. */
describe('the store schema record and snapshot', () => {
  it('a start that finds the note as it would write it leaves the file alone (no write, no fsync); a changed one replaces it', async () => {
    const dir = tempDir('schema');
    const store = new AgentStore(join(dir, 'agent.db'));
    await StoreSchemaRecord.write(dir, store.schema, store.snapshot);
    const first = statSync(join(dir, 'store-schema.json'));
    await StoreSchemaRecord.write(dir, store.schema, store.snapshot);
    const again = statSync(join(dir, 'store-schema.json'));
    expect([again.ino, again.mtimeMs]).toEqual([first.ino, first.mtimeMs]);
    await StoreSchemaRecord.write(dir, { ...store.schema, version: store.schema.version + 1 }, null);
    expect(statSync(join(dir, 'store-schema.json')).ino).not.toBe(first.ino);
    expect(note(dir).version).toBe(store.schema.version + 1);
    store.close();
  });

  it('an additive step of a newer release: no snapshot, and this release opens the newer store as it is', async () => {
    const dir = tempDir('schema');
    const file = join(dir, 'agent.db');
    new AgentStore(file).close();
    const newer = new AgentStore(file, {
      migrations: newerRelease(['CREATE TABLE later_feature (x INTEGER)']),
    });
    expect(newer.snapshot).toBeNull();
    expect(newer.schema).toMatchObject({ version: AGENT_STORE_SCHEMA + 1, oldestReader: 0 });
    await StoreSchemaRecord.write(dir, newer.schema, newer.snapshot);
    newer.close();
    expect(note(dir)).toEqual({
      version: AGENT_STORE_SCHEMA + 1,
      oldestReader: 0,
      snapshot: null,
      salesSinceSnapshot: false,
    });
    const older = new AgentStore(file);
    expect(older.schema).toMatchObject({ openedNewer: true, known: AGENT_STORE_SCHEMA });
    sale(older, 'tx-after-rollback');
    expect(older.transactions.get('tx-after-rollback')).toBeTruthy();
    older.close();
  });

  it('a step older releases cannot open: a snapshot first; the first sale after it is recorded before it is stored', async () => {
    const dir = tempDir('schema');
    const file = join(dir, 'agent.db');
    const old = new AgentStore(file);
    sale(old, 'tx-before');
    old.close();
    const breaking = newerRelease([
      { sql: 'CREATE TABLE outbox_v2 (seq INTEGER)', oldestReader: AGENT_STORE_SCHEMA + 1 },
    ]);
    const newer = new AgentStore(file, {
      migrations: breaking,
      now: () => Date.parse('2026-12-02T07:00:00Z'),
    });
    expect(newer.snapshot).toEqual({
      file: `agent.db.before-schema-${AGENT_STORE_SCHEMA + 1}`,
      version: AGENT_STORE_SCHEMA,
      oldestReader: 0,
      takenAt: '2026-12-02T07:00:00.000Z',
    });
    const record = await StoreSchemaRecord.write(dir, newer.schema, newer.snapshot);
    expect(note(dir)).toMatchObject({
      version: AGENT_STORE_SCHEMA + 1,
      oldestReader: AGENT_STORE_SCHEMA + 1,
      salesSinceSnapshot: false,
    });
    // A restart of the same release keeps the snapshot it took.
    const again = await StoreSchemaRecord.write(dir, newer.schema, null);
    expect(again.current().snapshot?.file).toBe(newer.snapshot?.file);
    record.beforeSale();
    expect(note(dir).salesSinceSnapshot).toBe(true);
    newer.close();
    expect(() => new AgentStore(file)).toThrow(
      `database schema version ${AGENT_STORE_SCHEMA + 1} is newer than this software knows (${AGENT_STORE_SCHEMA}) and can be opened only by software of schema ${AGENT_STORE_SCHEMA + 1} or later; refusing to touch it`,
    );
    // Committed: the snapshot goes.
    await record.dropSnapshot(dir);
    expect(note(dir)).toMatchObject({ snapshot: null, salesSinceSnapshot: false });
    expect(existsSync(join(dir, `agent.db.before-schema-${AGENT_STORE_SCHEMA + 1}`))).toBe(false);
  });

  it('asked by the guard, the previous release puts the snapshot back, keeps the migrated store beside it, once', async () => {
    const dir = tempDir('schema');
    const file = join(dir, 'agent.db');
    const old = new AgentStore(file);
    sale(old, 'tx-before');
    old.close();
    const to = AGENT_STORE_SCHEMA + 1;
    new AgentStore(file, {
      migrations: newerRelease([{ sql: 'CREATE TABLE outbox_v2 (seq INTEGER)', oldestReader: to }]),
    }).close();
    const guard: GuardResult = {
      actionId: 'act_1',
      from: '1.0.0',
      to: '2.0.0',
      reason: 'r',
      at: '2026-12-02T07:00:00Z',
      restoreStore: { snapshot: `agent.db.before-schema-${to}`, migratedTo: to },
    };
    // A name that is not the snapshot's is never taken (the note is root's, but the file is ours).
    expect(
      await restoreStoreIfAsked(
        file,
        { ...guard, restoreStore: { snapshot: '../etc/passwd', migratedTo: to } },
        () => 5,
      ),
    ).toBeNull();
    const done = await restoreStoreIfAsked(file, guard, () => 5);
    expect(done).toEqual({
      snapshot: `agent.db.before-schema-${to}`,
      keptAs: `agent.db.rolled-back-schema-${to}-5`,
    });
    const back = new AgentStore(file);
    expect(back.schema).toMatchObject({ version: AGENT_STORE_SCHEMA, openedNewer: false });
    expect(back.transactions.get('tx-before')).toBeTruthy();
    back.close();
    expect(readdirSync(dir)).toContain(`agent.db.rolled-back-schema-${to}-5`);
    expect(await restoreStoreIfAsked(file, guard, () => 6)).toBeNull();
  });
});
