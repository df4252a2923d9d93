import type Database from 'better-sqlite3';

export type Db = Database.Database;
export type Statement = Database.Statement;

/**
 * The one statement style of the SQLite tables: every statement a table runs is prepared once,
 * here, when the table is built, and takes named parameters (`@name`) from one object.
 */
export function prepareAll<K extends string>(db: Db, sql: Record<K, string>): Record<K, Statement> {
  const out = {} as Record<K, Statement>;
  for (const k of Object.keys(sql) as K[]) out[k] = db.prepare(sql[k]);
  return out;
}

/** SQLite keeps booleans as 0/1; the interfaces speak booleans. */
export const bit = (b: boolean): number => (b ? 1 : 0);
