/**
 * Numbered schema migrations over `PRAGMA user_version`, shared by the agent's and the cloud's
 * stores. Pure over a minimal database interface: it performs no I/O of its own.
 *
 * Rollback across a migration (issue 24): each step says which software can still use the store
 * after it. An additive step (a new table, a new nullable column) keeps the store usable by the
 * software of the schema before it; a step that changes or drops what older code reads declares
 * `oldestReader` — the lowest schema version whose software can open the store once the step ran.
 * The store records that in `schema_compat`, so an older release (rolled back to) that finds a newer
 * store opens it as it is when it may — without touching the schema — and refuses, naming the
 * versions, when it may not.
 */
export interface MigratableDatabase {
  pragma(source: string, options: { simple: true }): unknown;
  exec(source: string): unknown;
  transaction(fn: () => void): () => void;
  prepare(source: string): { get(...params: unknown[]): unknown };
}

/** One step: its SQL, and (for a step older software cannot live with) the oldest schema that can read the result. */
export type Migration = string | { sql: string; oldestReader: number };

/** What the store is, and which software may open it. */
export interface SchemaInfo {
  /** `PRAGMA user_version`: the steps applied. */
  version: number;
  /** The lowest schema version whose software may open this store (≤ version). */
  oldestReader: number;
}

export interface MigrationResult extends SchemaInfo {
  from: number;
  /** The schema this software knows (its steps). */
  known: number;
  /** The store is newer than this software, which may use it as it is (nothing was changed). */
  openedNewer: boolean;
}

export class SchemaTooNewError extends Error {
  override readonly name = 'SchemaTooNewError';
  constructor(
    readonly found: SchemaInfo,
    readonly known: number,
  ) {
    super(
      `database schema version ${found.version} is newer than this software knows (${known}) and can be opened only by software of schema ${found.oldestReader} or later; refusing to touch it`,
    );
  }
}

const stepSql = (m: Migration) => (typeof m === 'string' ? m : m.sql);

/** The oldest reader of a store after the first `version` steps of `migrations` (additive steps keep it). */
export function oldestReaderAfter(migrations: readonly Migration[], version: number): number {
  let oldest = 0;
  for (const m of migrations.slice(0, version))
    if (typeof m !== 'string') oldest = Math.max(oldest, m.oldestReader);
  return Math.min(oldest, version);
}

const COMPAT_TABLE = `CREATE TABLE IF NOT EXISTS schema_compat (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  oldest_reader INTEGER NOT NULL
)`;

/** The schema of an open store, from its own record (a store without one: only its own schema reads it). */
export function readSchemaInfo(db: MigratableDatabase): SchemaInfo {
  const version = Number(db.pragma('user_version', { simple: true }));
  const hasTable = db
    .prepare("SELECT 1 AS present FROM sqlite_master WHERE type = 'table' AND name = 'schema_compat'")
    .get();
  const row = hasTable
    ? (db.prepare('SELECT oldest_reader AS oldestReader FROM schema_compat WHERE id = 1').get() as
        | { oldestReader: number }
        | undefined)
    : undefined;
  return { version, oldestReader: row ? Math.min(row.oldestReader, version) : version };
}

/**
 * Applies the steps the store lacks, each in its own transaction with its schema version and its
 * oldest reader. A store newer than `migrations` is opened untouched when its oldest reader is
 * within them, and refused (SchemaTooNewError) otherwise.
 */
export function migrate(db: MigratableDatabase, migrations: readonly Migration[]): MigrationResult {
  const found = readSchemaInfo(db);
  const known = migrations.length;
  if (found.version > known) {
    if (found.oldestReader > known) throw new SchemaTooNewError(found, known);
    return { ...found, from: found.version, known, openedNewer: true };
  }
  for (let v = found.version; v < known; v++) {
    const step = db.transaction(() => {
      db.exec(stepSql(migrations[v] as Migration));
      db.exec(COMPAT_TABLE);
      db.exec(
        `INSERT INTO schema_compat (id, oldest_reader) VALUES (1, ${oldestReaderAfter(migrations, v + 1)})
         ON CONFLICT (id) DO UPDATE SET oldest_reader = excluded.oldest_reader`,
      );
      db.exec(`PRAGMA user_version = ${v + 1}`);
    });
    step();
  }
  if (found.version === known && known > 0) {
    // A store from before the record (or one it never reached): write it, so older software can tell.
    const recorded = readSchemaInfo(db);
    const expected = oldestReaderAfter(migrations, known);
    if (recorded.oldestReader !== expected)
      db.transaction(() => {
        db.exec(COMPAT_TABLE);
        db.exec(
          `INSERT INTO schema_compat (id, oldest_reader) VALUES (1, ${expected})
           ON CONFLICT (id) DO UPDATE SET oldest_reader = excluded.oldest_reader`,
        );
      })();
  }
  return {
    version: known,
    oldestReader: oldestReaderAfter(migrations, known),
    from: found.version,
    known,
    openedNewer: false,
  };
}
