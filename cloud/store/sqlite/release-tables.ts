import { RELEASE_SQL, releaseInsertParams } from '../release-sql.js';
import type { Immediate, ReleaseRow, ReleaseStore } from '../store-types.js';
import { type Db, prepareAll } from './statements.js';

/**
 * Releases in the embedded store. One process serves them, so an artifact stays the file the
 * release service wrote under the data dir (the row's `file`); its bytes are not kept here.
 */
export class SqliteReleases implements Immediate<ReleaseStore> {
  readonly keepsArtifacts = false;
  private readonly s;
  constructor(db: Db) {
    this.s = prepareAll(db, RELEASE_SQL);
  }
  insert(row: ReleaseRow): void {
    this.s.insert.run(releaseInsertParams(row));
  }
  get(version: string): ReleaseRow | undefined {
    return this.s.get.get({ version }) as ReleaseRow | undefined;
  }
  list(): ReleaseRow[] {
    return this.s.list.all() as ReleaseRow[];
  }
  setDowngradeSignature(version: string, signature: string, from: string): void {
    this.s.downgrade.run({ version, signature, from });
  }
  insertChunk(version: string): void {
    throw new Error(
      `the SQLite store keeps no artifact bytes (release ${version}): its file is the artifact`,
    );
  }
  chunk(): undefined {
    return undefined;
  }
  deleteChunks(): void {}
}
