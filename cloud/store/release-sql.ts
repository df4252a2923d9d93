import type { ReleaseRow } from './store-types.js';

/**
 * Releases: the statements both engines run (named parameters; each engine's table classes
 * prepare them their way). The artifact's pieces (`release_chunks`) are PostgreSQL's alone.
 */
const RELEASE_COLUMNS = `version, sha256, size, signature, file, created_at AS createdAt,
  downgrade_signature AS downgradeSignature, downgrade_from AS downgradeFrom`;

export const RELEASE_SQL = {
  insert: `INSERT INTO releases (version, sha256, size, signature, file, created_at)
    VALUES (@version, @sha256, @size, @signature, @file, @createdAt)`,
  get: `SELECT ${RELEASE_COLUMNS} FROM releases WHERE version = @version`,
  list: `SELECT ${RELEASE_COLUMNS} FROM releases ORDER BY created_at DESC, version`,
  downgrade:
    'UPDATE releases SET downgrade_signature = @signature, downgrade_from = @from WHERE version = @version',
};

/** The insert's parameters from a row: the columns the insert names, nothing else. */
export function releaseInsertParams(row: ReleaseRow) {
  const { version, sha256, size, signature, file, createdAt } = row;
  return { version, sha256, size, signature, file, createdAt };
}
