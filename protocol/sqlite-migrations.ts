/**
 * Numbered schema migrations over `PRAGMA user_version`, shared by the agent's and the cloud's
 * stores. Pure over a minimal database interface: it performs no I/O of its own.
 */
export interface MigratableDatabase {
  pragma(source: string, options: { simple: true }): unknown;
  exec(source: string): unknown;
  transaction(fn: () => void): () => void;
}

/** `migrations[i]` brings the schema from version i to i+1. Each runs in its own transaction. */
export function migrate(db: MigratableDatabase, migrations: readonly string[]): { from: number; to: number } {
  const from = Number(db.pragma('user_version', { simple: true }));
  if (from > migrations.length) {
    throw new Error(
      `database schema version ${from} is newer than this software knows (${migrations.length}); refusing to touch it`,
    );
  }
  for (let v = from; v < migrations.length; v++) {
    const step = db.transaction(() => {
      db.exec(migrations[v]!);
      db.exec(`PRAGMA user_version = ${v + 1}`);
    });
    step();
  }
  return { from, to: migrations.length };
}
