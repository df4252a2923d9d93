import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { access, mkdir, open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Refusal } from '../../protocol/refusal.js';
import type { CloudStore, ReleaseRow } from '../store/store-types.js';

/** The size of one stored piece of an artifact (the last one is shorter). */
export const RELEASE_CHUNK_BYTES = 1024 * 1024;

export interface ReleaseArtifactsOptions {
  store: Pick<CloudStore, 'releases'>;
  dataDir: string;
  log: { info(obj: object, msg: string): void };
}

/**
 * Where a release's tarball is for a download. With SQLite (one process) it is the file written
 * at publish, which the row names. With PostgreSQL (several gateways) the store keeps the bytes
 * in pieces, written at publish in the row's transaction, and each gateway caches the file under
 * its own data dir: checked against the row's sha256 the first time this process serves it, or
 * else rebuilt from the pieces (a temp file, hashed as written, renamed only when it matches).
 */
export class ReleaseArtifacts {
  /** Per version: this process's checked file (PostgreSQL only). */
  private readonly ready = new Map<string, Promise<string>>();

  constructor(private readonly o: ReleaseArtifactsOptions) {}

  /** This gateway's file for a release. */
  fileOf(version: string): string {
    return join(this.o.dataDir, 'releases', `${version}.tgz`);
  }

  /** Whether the store holds the artifact of `r` whole and unchanged (its pieces hash to the row's sha256), where it keeps artifacts at all. */
  async intactInStore(r: Pick<ReleaseRow, 'version' | 'sha256' | 'size'>): Promise<boolean> {
    if (!this.o.store.releases.keepsArtifacts) return true;
    const got = await this.readPieces(r);
    return got.size === r.size && got.sha256 === r.sha256;
  }

  /**
   * The store's pieces of `r`'s artifact, in order, each handed to `each`: their sha256 (null
   * when they run past the release's size: already wrong, reading stops), size and count.
   */
  private async readPieces(
    r: Pick<ReleaseRow, 'version' | 'size'>,
    each: (bytes: Buffer) => Promise<unknown> = async () => {},
  ): Promise<{ sha256: string | null; size: number; pieces: number }> {
    const hash = createHash('sha256');
    let size = 0;
    let pieces = 0;
    for (;;) {
      const bytes = await this.o.store.releases.chunk(r.version, pieces);
      if (!bytes) break;
      pieces++;
      size += bytes.length;
      if (size > r.size) return { sha256: null, size, pieces };
      hash.update(bytes);
      await each(bytes);
    }
    return { sha256: hash.digest('hex'), size, pieces };
  }

  /** Called inside the release row's transaction: `file`'s bytes into the store, in pieces (if it keeps them). */
  async keep(version: string, file: string): Promise<void> {
    if (!this.o.store.releases.keepsArtifacts) return;
    const fh = await open(file, 'r');
    try {
      for (let seq = 0; ; seq++) {
        const buf = Buffer.alloc(RELEASE_CHUNK_BYTES);
        const { bytesRead } = await fh.read(buf, 0, RELEASE_CHUNK_BYTES, seq * RELEASE_CHUNK_BYTES);
        if (bytesRead === 0) break;
        await this.o.store.releases.insertChunk(version, seq, buf.subarray(0, bytesRead));
      }
    } finally {
      await fh.close();
    }
  }

  /** The file at `file` was just written and hashed to the row's sha256 by this process. */
  checked(version: string, file: string): void {
    if (this.o.store.releases.keepsArtifacts) this.ready.set(version, Promise.resolve(file));
  }

  /** The artifact's file on this gateway, to stream to a terminal. */
  async file(r: ReleaseRow): Promise<string> {
    if (!this.o.store.releases.keepsArtifacts) {
      await access(r.file).catch(() => {
        throw missing(r.version);
      });
      return r.file;
    }
    const known = this.ready.get(r.version);
    if (known) {
      const file = await known;
      // Checked before, and still there (nobody cleaned the cache since).
      if (
        await access(file).then(
          () => true,
          () => false,
        )
      )
        return file;
      if (this.ready.get(r.version) === known) this.ready.delete(r.version);
    }
    let pending = this.ready.get(r.version);
    if (!pending) {
      pending = this.cache(r);
      this.ready.set(r.version, pending);
      // A failure is not remembered: the next download tries again.
      pending.catch(() => {
        if (this.ready.get(r.version) === pending) this.ready.delete(r.version);
      });
    }
    return pending;
  }

  private async cache(r: ReleaseRow): Promise<string> {
    const file = this.fileOf(r.version);
    if ((await sha256OfFile(file).catch(() => null)) === r.sha256) return file;
    await mkdir(join(this.o.dataDir, 'releases'), { recursive: true });
    const tmp = `${file}.from-store-${process.pid}-${randomUUID()}`;
    try {
      let got: Awaited<ReturnType<ReleaseArtifacts['readPieces']>>;
      const fh = await open(tmp, 'wx', 0o644);
      try {
        got = await this.readPieces(r, (bytes) => fh.write(bytes));
        await fh.sync();
      } finally {
        await fh.close();
      }
      const { sha256, size, pieces } = got;
      if (pieces === 0)
        throw new Refusal(
          'release_not_found',
          `the artifact of release ${r.version} is missing on the cloud: it is not in the store (publish the same tarball again to put it there)`,
        );
      if (sha256 !== r.sha256)
        throw new Refusal(
          'release_not_found',
          `the artifact of release ${r.version} in the store does not match the release (${sha256 ? `sha256 ${sha256}` : `over ${r.size} bytes`}, ${pieces} pieces; the release is sha256 ${r.sha256}, ${r.size} bytes): it is not served`,
        );
      await rename(tmp, file);
      this.o.log.info({ version: r.version, sha256, size }, 'release artifact cached from the store');
      return file;
    } finally {
      await rm(tmp, { force: true });
    }
  }
}

const missing = (version: string) =>
  new Refusal('release_not_found', `the artifact of release ${version} is missing on the cloud`);

async function sha256OfFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
