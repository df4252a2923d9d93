import { RELEASE_SQL, releaseInsertParams } from '../release-sql.js';
import type { ReleaseRow, ReleaseStore } from '../store-types.js';
import { type PgExec, pgStatements } from './pg-statements.js';

/**
 * Releases in the shared store. Several gateways serve them, so the artifact's bytes are here too,
 * in numbered pieces (`release_chunks`), written in the release row's transaction; each gateway
 * caches the file in its own data dir (cloud/actions/release-artifacts.ts).
 */
export class PgReleases implements ReleaseStore {
  readonly keepsArtifacts = true;
  private readonly s;
  constructor(private readonly q: PgExec) {
    this.s = pgStatements('releases', {
      ...RELEASE_SQL,
      insertChunk: 'INSERT INTO release_chunks (version, seq, bytes) VALUES (@version, @seq, @bytes)',
      chunk: 'SELECT bytes FROM release_chunks WHERE version = @version AND seq = @seq',
      deleteChunks: 'DELETE FROM release_chunks WHERE version = @version',
    });
  }
  async insert(row: ReleaseRow): Promise<void> {
    await this.q.run(this.s.insert, releaseInsertParams(row));
  }
  async get(version: string): Promise<ReleaseRow | undefined> {
    return (await this.q.one(this.s.get, { version })) as ReleaseRow | undefined;
  }
  async list(): Promise<ReleaseRow[]> {
    return (await this.q.all(this.s.list)) as ReleaseRow[];
  }
  async setDowngradeSignature(version: string, signature: string, from: string): Promise<void> {
    await this.q.run(this.s.downgrade, { version, signature, from });
  }
  async insertChunk(version: string, seq: number, bytes: Buffer): Promise<void> {
    await this.q.run(this.s.insertChunk, { version, seq, bytes });
  }
  async chunk(version: string, seq: number): Promise<Buffer | undefined> {
    return (await this.q.one<{ bytes: Buffer }>(this.s.chunk, { version, seq }))?.bytes;
  }
  async deleteChunks(version: string): Promise<void> {
    await this.q.run(this.s.deleteChunks, { version });
  }
}
