import { type KeyObject, randomUUID } from 'node:crypto';
import { mkdir, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Readable } from 'node:stream';
import { MAX_RELEASE_BYTES, type ReleaseDescriptor, SemVer } from '../../protocol/actions.js';
import { Refusal } from '../../protocol/refusal.js';
import { compileValidator } from '../../protocol/schema-validation.js';
import { unixSeconds } from '../rest-time.js';
import type { CloudStore, ReleaseRow } from '../store/store-types.js';
import { ReleaseArtifacts } from './release-artifacts.js';
import { receiveToFile, releaseSignatureValid } from './release-files.js';
import { packageVersionOf } from './release-signing.js';

/**
 * The releases an update installs (`PUT /v1/releases/{version}`): each one's row says what the
 * vendor signed, and its tarball is a file under the data dir (with PostgreSQL also in the shared
 * store, which any gateway serves it from: release-artifacts.ts); an `update` action names one.
 */
export interface ReleaseServiceOptions {
  store: Pick<CloudStore, 'releases' | 'transaction'>;
  dataDir: string;
  now(): number;
  /** The vendor's release public keys: a release is published only if one of them signed it. */
  releaseKeys: readonly KeyObject[];
  log: { info(obj: object, msg: string): void };
}

const semver = compileValidator(SemVer);

export class ReleaseService {
  private readonly artifacts: ReleaseArtifacts;
  constructor(private readonly o: ReleaseServiceOptions) {
    this.artifacts = new ReleaseArtifacts(o);
  }

  /**
   * `PUT /v1/releases/{version}`: the tarball as the body, its signature in
   * `Posagent-Release-Signature`. The body streams to disk, hashed on the way; the version must
   * be the tarball's own, and the signature must verify with one of the release public keys the
   * cloud was started with (`--release-public-key`): a badly signed release is refused here and
   * does not take the version. Terminals check the signature again against the key they pin.
   */
  async publishRelease(
    version: string,
    signature: string | undefined,
    tarball: Readable,
  ): Promise<Record<string, unknown>> {
    checkVersion(version);
    if (typeof signature !== 'string')
      throw new Refusal(
        'invalid_release',
        'the Posagent-Release-Signature header (base64 Ed25519) is required',
      );
    if (!/^[A-Za-z0-9+/=]{20,200}$/.test(signature))
      throw new Refusal(
        'invalid_release',
        'the Posagent-Release-Signature header must be a base64 Ed25519 signature (posagent-cloud release-sign prints it)',
      );
    if (this.o.releaseKeys.length === 0)
      throw new Refusal(
        'release_key_not_configured',
        'this cloud has no release public key to check signatures with: start it with --release-public-key FILE',
      );
    const file = this.artifacts.fileOf(version);
    await mkdir(dirname(file), { recursive: true });
    const tmp = `${file}.upload-${process.pid}-${randomUUID()}`;
    try {
      const { sha256, size } = await receiveToFile(tarball, tmp, MAX_RELEASE_BYTES);
      if (size === 0) throw new Refusal('invalid_release', 'the body must be the release tarball');
      let inside: string;
      try {
        inside = await packageVersionOf(tmp);
      } catch (err) {
        // The reader names the file it read: the temp path (data dir, pid) is not the client's to know.
        const message = (err as Error).message.replaceAll(tmp, 'the tarball');
        throw new Refusal('invalid_release', message, { kind: 'content' });
      }
      if (inside !== version)
        throw new Refusal('release_version_mismatch', `the tarball is version ${inside}, not ${version}`);
      if (!releaseSignatureValid({ version, sha256, size, signature }, this.o.releaseKeys))
        throw new Refusal(
          'release_signature_invalid',
          `the signature of ${version} (sha256 ${sha256}, ${size} bytes) does not verify with any release public key of this cloud`,
        );
      const existing = await this.o.store.releases.get(version);
      if (existing) {
        if (existing.sha256 === sha256 && existing.signature === signature) {
          // Published before the store kept artifacts, or its pieces damaged since: the same
          // tarball again (checked against the row above) writes them whole.
          if (!(await this.artifacts.intactInStore(existing))) {
            await this.o.store.transaction(async () => {
              await this.o.store.releases.deleteChunks(version);
              await this.artifacts.keep(version, tmp);
            });
            this.o.log.info({ version }, "release artifact's pieces written again from the same tarball");
          }
          return this.releaseView(existing);
        }
        throw new Refusal(
          'release_exists',
          `release ${version} exists with other content; publish a new version`,
        );
      }
      // The row and (with PostgreSQL) the artifact's pieces land together; then the file.
      await this.o.store.transaction(async () => {
        await this.o.store.releases.insert({
          version,
          sha256,
          size,
          signature,
          file,
          createdAt: this.o.now(),
        });
        await this.artifacts.keep(version, tmp);
      });
      await rename(tmp, file);
      this.artifacts.checked(version, file);
      this.o.log.info({ version, sha256, size }, 'release published');
      return this.releaseView((await this.o.store.releases.get(version))!);
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /**
   * `PUT /v1/releases/{version}/downgrade-signature {signature}`: the release key's permission
   * to install this release over newer ones up to `from` (`posagent-cloud release-sign --allow-downgrade-from`).
   * Kept as given; the terminal checks it against its pinned key.
   */
  async setDowngradeSignature(version: string, body: unknown): Promise<Record<string, unknown>> {
    checkVersion(version);
    const r = await this.o.store.releases.get(version);
    if (!r) throw new Refusal('release_not_found', `no release ${version}`);
    const { signature, from } = (body ?? {}) as { signature?: unknown; from?: unknown };
    if (
      typeof signature !== 'string' ||
      !/^[A-Za-z0-9+/=]{20,200}$/.test(signature) ||
      typeof from !== 'string' ||
      !semver.check(from).ok
    )
      throw new Refusal(
        'invalid_release',
        'body must be {"signature": "<base64 Ed25519 downgrade signature>", "from": "<the newest version it may replace>"} (posagent-cloud release-sign --allow-downgrade-from)',
      );
    if (
      !releaseSignatureValid(
        { ...descriptor(r), downgradeSignature: signature, downgradeFrom: from },
        this.o.releaseKeys,
        'downgrade',
      )
    )
      throw new Refusal(
        'release_signature_invalid',
        `the downgrade signature of ${version} (from ${from}) is not valid for any release public key this cloud was started with`,
      );
    await this.o.store.releases.setDowngradeSignature(version, signature, from);
    this.o.log.info({ version, from }, 'release may now be installed as a downgrade');
    return this.releaseView((await this.o.store.releases.get(version))!);
  }

  async getRelease(version: string): Promise<Record<string, unknown>> {
    checkVersion(version);
    const r = await this.o.store.releases.get(version);
    if (!r) throw new Refusal('release_not_found', `no release ${version}`);
    return this.releaseView(r);
  }

  async listReleases(): Promise<{ data: Record<string, unknown>[] }> {
    return { data: (await this.o.store.releases.list()).map((r) => this.releaseView(r)) };
  }

  /** The artifact's file on this gateway, for a terminal's download (streamed, with HTTP Range). */
  async artifact(version: string): Promise<string> {
    checkVersion(version);
    const r = await this.o.store.releases.get(version);
    if (!r) throw new Refusal('release_not_found', `no release ${version}`);
    return this.artifacts.file(r);
  }

  private releaseView(r: ReleaseRow): Record<string, unknown> {
    return {
      object: 'release',
      ...descriptor(r, true),
      downgradeAllowed: Boolean(r.downgradeSignature),
      createdAt: unixSeconds(r.createdAt),
    };
  }
}

/** A release version in a path: a semantic version, or a clear refusal (never echoed past 40 characters). */
function checkVersion(version: string): void {
  if (!semver.check(version).ok)
    throw new Refusal('invalid_release', `"${version.slice(0, 40)}" is not a semantic version (e.g. 1.4.2)`);
}

/** What a terminal is told of a release (the downgrade permission only when asked for). */
export function descriptor(r: ReleaseRow, withDowngrade = false): ReleaseDescriptor {
  return {
    version: r.version,
    sha256: r.sha256,
    size: r.size,
    signature: r.signature,
    ...(withDowngrade && r.downgradeSignature && r.downgradeFrom
      ? { downgradeSignature: r.downgradeSignature, downgradeFrom: r.downgradeFrom }
      : {}),
  };
}
