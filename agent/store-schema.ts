import { lstat, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { writeFileAtomic, writeFileAtomicSync } from '../files/atomic-file.js';
import type { MigrationResult } from '../protocol/sqlite-migrations.js';
import type { GuardResult, StoreSchemaNote } from '../release/layout.js';

/**
 * What the boot guard (root) needs to know about the agent's store to roll a release back across a
 * store migration (issue 24), kept by the agent in its own state dir (`store-schema.json`): the
 * store's schema, the lowest schema whose software may open it, and — when this release's
 * migration left a store older software cannot open — the snapshot taken before it and whether a
 * sale was accepted since (then putting the snapshot back would lose it). The guard decides
 * (release/guard-decision.ts); the previous release, started again, puts the snapshot back itself
 * (root never writes in the agent's directory).
 */
export class StoreSchemaRecord {
  private note: StoreSchemaNote;

  private constructor(
    private readonly file: string,
    note: StoreSchemaNote,
  ) {
    this.note = note;
  }

  /**
   * After the store opened: the schema it has now, and the snapshot it took (now, or at an earlier
   * start of this same release: kept until the release is committed).
   */
  static async write(
    stateDir: string,
    schema: Pick<MigrationResult, 'version' | 'oldestReader'>,
    takenNow: StoreSchemaNote['snapshot'],
  ): Promise<StoreSchemaRecord> {
    const file = join(stateDir, 'store-schema.json');
    const text = await readFile(file, 'utf8').catch(() => null);
    const before = text === null ? null : parsedOrNull(text);
    let snapshot = takenNow;
    let salesSinceSnapshot = false;
    if (
      !snapshot &&
      before?.snapshot &&
      before.version === schema.version &&
      (await isOwnFile(stateDir, before.snapshot.file))
    ) {
      snapshot = before.snapshot;
      salesSinceSnapshot = before.salesSinceSnapshot;
    }
    const record = new StoreSchemaRecord(file, {
      version: schema.version,
      oldestReader: schema.oldestReader,
      snapshot,
      salesSinceSnapshot,
    });
    // Most starts find the note as they would write it: not written again (two fsyncs on the way to Online).
    if (record.text() !== text) await writeFileAtomic(file, record.text(), 0o644);
    return record;
  }

  current(): StoreSchemaNote {
    return { ...this.note };
  }

  /**
   * Called before a sale is stored: the first one after a snapshot is recorded first (on disk
   * before the sale is), so the guard never puts back a snapshot that lacks a sale.
   */
  beforeSale(): void {
    if (!this.note.snapshot || this.note.salesSinceSnapshot) return;
    this.note = { ...this.note, salesSinceSnapshot: true };
    writeFileAtomicSync(this.file, this.text(), 0o644);
  }

  /** The release proved itself (committed): the snapshot is not needed any more. */
  async dropSnapshot(stateDir: string): Promise<void> {
    const s = this.note.snapshot;
    if (!s) return;
    this.note = { ...this.note, snapshot: null, salesSinceSnapshot: false };
    await writeFileAtomic(this.file, this.text(), 0o644);
    await rm(join(stateDir, s.file), { force: true });
  }

  private text(): string {
    return `${JSON.stringify(this.note, null, 2)}\n`;
  }
}

/** The snapshot's name beside the store: `agent.db.before-schema-N`. */
export function snapshotName(dbFile: string, toVersion: number): string {
  return `${basename(dbFile)}.before-schema-${toVersion}`;
}

async function isOwnFile(dir: string, name: string): Promise<boolean> {
  if (name !== basename(name) || name.startsWith('.')) return false;
  const s = await lstat(join(dir, name)).catch(() => null);
  return s?.isFile() === true && s.uid === process.getuid?.();
}

/**
 * Before the store opens: the boot guard rolled back to this release and asked for the store's
 * snapshot (the newer release's migration left a store this one cannot open, and no sale was taken
 * since). The migrated store is kept beside it (`agent.db.rolled-back-schema-N-<time>`) for support;
 * the snapshot takes its place. Once done the snapshot is gone, so a second start does nothing.
 * Returns what was done, for the log, or null.
 */
export async function restoreStoreIfAsked(
  dbFile: string,
  guard: GuardResult | null,
  now: () => number,
): Promise<{ snapshot: string; keptAs: string } | null> {
  const ask = guard?.restoreStore;
  if (!ask) return null;
  const dir = dirname(dbFile);
  if (ask.snapshot !== snapshotName(dbFile, ask.migratedTo) || !(await isOwnFile(dir, ask.snapshot)))
    return null;
  const keptAs = `${basename(dbFile)}.rolled-back-schema-${ask.migratedTo}-${now()}`;
  for (const suffix of ['', '-wal', '-shm']) {
    await rename(`${dbFile}${suffix}`, join(dir, `${keptAs}${suffix}`)).catch(
      (err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      },
    );
  }
  await rename(join(dir, ask.snapshot), dbFile);
  return { snapshot: ask.snapshot, keptAs };
}

/** A note as read back (torn or foreign: as good as absent, as release/layout.ts readJson has it). */
function parsedOrNull(text: string): StoreSchemaNote | null {
  try {
    return JSON.parse(text) as StoreSchemaNote;
  } catch {
    return null;
  }
}
