import { join } from 'node:path';
import Database from 'better-sqlite3';

/**
 * Reads the running cloud's SQLite file (read-only, beside the cloud's own connection; WAL lets
 * both in): what a test checks to show that a refused request stored nothing.
 */
export function cloudRows<T = Record<string, unknown>>(
  dataDir: string,
  sql: string,
  ...params: unknown[]
): T[] {
  const db = new Database(join(dataDir, 'cloud.db'), { readonly: true, fileMustExist: true });
  try {
    return db.prepare(sql).all(...params) as T[];
  } finally {
    db.close();
  }
}

/** `SELECT COUNT(*)` of a table (or of a query's rows). */
export function cloudCount(dataDir: string, table: string, where = '1', ...params: unknown[]): number {
  return cloudRows<{ n: number }>(dataDir, `SELECT COUNT(*) AS n FROM ${table} WHERE ${where}`, ...params)[0]!
    .n;
}
