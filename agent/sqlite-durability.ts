import type Database from 'better-sqlite3';

/**
 * Runs `fn` in one transaction committed without an fsync: synchronous=NORMAL for that commit
 * (the store is WAL, synchronous=FULL otherwise). For writes a power cut may lose without harm —
 * the next FULL commit flushes the WAL with them, in order, and a killed process loses nothing
 * either way (the OS has the WAL). What uses it says why its write may be lost.
 */
export function withoutFsync<T>(db: Database.Database, fn: () => T): T {
  db.pragma('synchronous = NORMAL');
  try {
    return db.transaction(fn)();
  } finally {
    db.pragma('synchronous = FULL');
  }
}
