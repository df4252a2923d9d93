import { type KeyObject, randomUUID } from 'node:crypto';
import { access, mkdir, rename, rm } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import {
  type ActionProgress,
  type ActionStatus,
  type ActionType,
  CreateActionBody,
  canMove,
  isFinal,
  type ReleaseDescriptor,
  type RunAction,
  SemVer,
} from '../../protocol/actions.js';
import { compileValidator } from '../../protocol/schema-validation.js';
import { ApiError, parseBody } from '../api/http-json.js';
import type { CloudActionRow, ReleaseRow } from '../store/action-table.js';
import type { CloudStore } from '../store/cloud-store.js';
import { receiveToFile, releaseSignatureValid } from './release-files.js';
import { packageVersionOf } from './release-signing.js';

/**
 * Terminal actions (`POST /v1/terminals/{id}/actions`) and the releases an update installs.
 * An action is `queued` until the terminal answers its `RunAction`; one for a terminal that is
 * offline waits and is sent after its next `Hello`; one never delivered before `expiresAt`
 * fails with the reason. Statuses only move forward (queued → processing → completed | failed).
 */
export interface ActionServiceOptions {
  store: CloudStore;
  dataDir: string;
  now(): number;
  defaultTtlSec: number;
  /** The vendor's release public keys: a release is published only if one of them signed it. */
  releaseKeys: readonly KeyObject[];
  /** A new action for a terminal: deliver it now if the terminal is connected. */
  onQueued(terminalId: string): void;
  /** An action reached completed or failed (webhooks); called inside the store transaction that finished it. */
  onFinished(view: ActionView): void;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

export interface ActionView {
  id: string;
  object: 'terminal_action';
  terminalId: string;
  type: ActionType;
  params: Record<string, unknown>;
  status: CloudActionRow['status'];
  reason: string | null;
  step: string | null;
  percent: number | null;
  createdAt: string;
  updatedAt: string;
  expiresAt: string;
  deliveredAt: string | null;
}

const createBody = compileValidator(CreateActionBody);
const semver = compileValidator(SemVer);
const MAX_RELEASE_BYTES = 512 * 1024 * 1024;

export class ActionService {
  private sweepTimer: NodeJS.Timeout | undefined;

  constructor(private readonly o: ActionServiceOptions) {}

  private get table() {
    return this.o.store.actions;
  }

  create(terminalId: string, body: unknown): ActionView {
    const b = parseBody(createBody, body, 'invalid_action');
    const terminal = this.o.store.getTerminal(terminalId);
    if (!terminal) throw new ApiError(404, 'not_found', `no terminal ${terminalId}`);
    if (terminal.deactivatedAt !== null)
      throw new ApiError(409, 'terminal_deactivated', `terminal ${terminalId} is deactivated`);
    let params: Record<string, unknown> = {};
    if (b.type === 'update') {
      const version = b.params?.version;
      if (!version) throw new ApiError(400, 'invalid_action', 'an update needs params.version');
      const release = this.table.getRelease(version);
      if (!release)
        throw new ApiError(
          404,
          'release_not_found',
          `no release ${version}; publish it with PUT /v1/releases/${version}`,
        );
      // The operator's allowDowngrade only asks; the release key's downgrade signature (sent with
      // the release only then) is what lets a terminal install an older version.
      params = {
        release: descriptor(release, b.params?.allowDowngrade === true),
        ...(b.params?.allowDowngrade ? { allowDowngrade: true } : {}),
      };
    } else if (b.params && Object.keys(b.params).length > 0) {
      throw new ApiError(400, 'invalid_action', `${b.type} takes no params`);
    }
    const now = this.o.now();
    const id = `act_${randomUUID().replaceAll('-', '').slice(0, 24)}`;
    this.table.insert({
      id,
      terminalId,
      type: b.type,
      params: JSON.stringify(params),
      createdAt: now,
      expiresAt: now + (b.ttlSeconds ?? this.o.defaultTtlSec) * 1000,
    });
    this.o.log.info({ terminalId, actionId: id, type: b.type }, 'action queued');
    setImmediate(() => this.o.onQueued(terminalId));
    return this.view(this.table.get(id)!);
  }

  get(terminalId: string, actionId: string): ActionView {
    const row = this.table.get(actionId);
    if (!row || row.terminalId !== terminalId)
      throw new ApiError(404, 'action_not_found', `no action ${actionId} for terminal ${terminalId}`);
    return this.view(row);
  }

  list(terminalId: string): { data: ActionView[] } {
    if (!this.o.store.getTerminal(terminalId))
      throw new ApiError(404, 'not_found', `no terminal ${terminalId}`);
    return { data: this.table.list(terminalId, 100).map((r) => this.view(r)) };
  }

  /** Actions to send to a terminal that said Hello (or is connected when one is queued). */
  pending(terminalId: string): RunAction[] {
    const now = this.o.now();
    return this.table
      .queued(terminalId)
      .filter((r) => r.expiresAt > now)
      .map(
        (r) =>
          ({
            actionId: r.id,
            type: r.type,
            params: JSON.parse(r.params) as Record<string, unknown>,
            expiresAt: new Date(r.expiresAt).toISOString(),
          }) as RunAction,
      );
  }

  /** The terminal answered a RunAction (first time or repeat) with where the action is. */
  delivered(terminalId: string, actionId: string, p: ActionProgress): void {
    this.apply(terminalId, actionId, p, true);
  }

  /** An `ActionStatus` from the terminal. */
  statusReported(terminalId: string, s: ActionStatus): void {
    this.apply(terminalId, s.actionId, s, true);
  }

  private apply(terminalId: string, actionId: string, p: ActionProgress, delivered: boolean): void {
    const row = this.table.get(actionId);
    if (!row || row.terminalId !== terminalId) {
      this.o.log.warn({ terminalId, actionId }, 'status for an action this terminal does not have; ignored');
      return;
    }
    // Statuses arrive in order from the agent's outbox; an old one after a final one is ignored.
    if (!canMove(row.status, p.status)) return;
    // The lock flag and the webhook event are written in the transaction that finishes the action.
    this.o.store.transaction(() => {
      this.table.update(actionId, p, this.o.now(), delivered);
      if (p.status === 'completed' && (row.type === 'lock' || row.type === 'unlock'))
        this.table.setLocked(terminalId, row.type === 'lock');
      if (isFinal(p.status)) this.o.onFinished(this.view(this.table.get(actionId)!));
    });
    if (isFinal(p.status))
      this.o.log.info({ terminalId, actionId, status: p.status, reason: p.reason }, 'action finished');
  }

  /** Fails actions that were never delivered before they expired. */
  sweep(): void {
    const now = this.o.now();
    for (const r of this.table.expired(now)) {
      this.o.store.transaction(() => {
        this.table.update(
          r.id,
          {
            status: 'failed',
            reason: `expired: the terminal did not connect before ${new Date(r.expiresAt).toISOString()}`,
            step: null,
            percent: null,
          },
          now,
          false,
        );
        this.o.onFinished(this.view(this.table.get(r.id)!));
      });
    }
  }

  start(everyMs: number): void {
    this.sweep();
    this.sweepTimer = setInterval(() => this.sweep(), everyMs);
    this.sweepTimer.unref();
  }

  stop(): void {
    clearInterval(this.sweepTimer);
  }

  locked(terminalId: string): boolean {
    return this.table.locked(terminalId);
  }

  // --- releases -----------------------------------------------------------------------------

  /**
   * `PUT /v1/releases/{version}`: the tarball as the body, its signature in
   * `Posagent-Release-Signature`. The body streams to disk, hashed on the way; the version must
   * be the tarball's own, and the signature must verify with one of the release public keys the
   * cloud was started with (`--release-public-key`): a badly signed release is refused here and
   * does not take the version. Terminals check the signature again against the key they pin.
   */
  async publishRelease(version: string, req: IncomingMessage): Promise<Record<string, unknown>> {
    if (!semver.check(version).ok)
      throw new ApiError(400, 'invalid_release', `"${version}" is not a semantic version (e.g. 1.4.2)`);
    const signature = req.headers['posagent-release-signature'];
    if (typeof signature !== 'string' || !/^[A-Za-z0-9+/=]{20,200}$/.test(signature))
      throw new ApiError(
        400,
        'invalid_release',
        'the Posagent-Release-Signature header (base64 Ed25519) is required',
      );
    if (this.o.releaseKeys.length === 0)
      throw new ApiError(
        409,
        'release_key_not_configured',
        'this cloud has no release public key to check signatures with: start it with --release-public-key FILE',
      );
    const dir = join(this.o.dataDir, 'releases');
    await mkdir(dir, { recursive: true });
    const file = join(dir, `${version}.tgz`);
    const tmp = `${file}.upload-${process.pid}-${randomUUID()}`;
    try {
      const { sha256, size } = await receiveToFile(req, tmp, MAX_RELEASE_BYTES);
      if (size === 0) throw new ApiError(400, 'invalid_release', 'the body must be the release tarball');
      let inside: string;
      try {
        inside = await packageVersionOf(tmp);
      } catch (err) {
        throw new ApiError(422, 'invalid_release', (err as Error).message);
      }
      if (inside !== version)
        throw new ApiError(
          422,
          'release_version_mismatch',
          `the tarball is version ${inside}, not ${version}`,
        );
      if (!releaseSignatureValid({ version, sha256, size, signature }, this.o.releaseKeys))
        throw new ApiError(
          422,
          'release_signature_invalid',
          `the signature of ${version} (sha256 ${sha256}, ${size} bytes) does not verify with any release public key of this cloud`,
        );
      const existing = this.table.getRelease(version);
      if (existing) {
        if (existing.sha256 === sha256 && existing.signature === signature) return this.releaseView(existing);
        throw new ApiError(
          409,
          'release_exists',
          `release ${version} exists with other content; publish a new version`,
        );
      }
      await rename(tmp, file);
      this.table.insertRelease({ version, sha256, size, signature, file, createdAt: this.o.now() });
      this.o.log.info({ version, sha256, size }, 'release published');
      return this.releaseView(this.table.getRelease(version)!);
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /**
   * `PUT /v1/releases/{version}/downgrade-signature {signature}`: the release key's permission
   * to install this release over newer ones up to `from` (`posagent-cloud release-sign --allow-downgrade-from`).
   * Kept as given; the terminal checks it against its pinned key.
   */
  setDowngradeSignature(version: string, body: unknown): Record<string, unknown> {
    const r = this.table.getRelease(version);
    if (!r) throw new ApiError(404, 'release_not_found', `no release ${version}`);
    const { signature, from } = (body ?? {}) as { signature?: unknown; from?: unknown };
    if (
      typeof signature !== 'string' ||
      !/^[A-Za-z0-9+/=]{20,200}$/.test(signature) ||
      typeof from !== 'string' ||
      !semver.check(from).ok
    )
      throw new ApiError(
        400,
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
      throw new ApiError(
        422,
        'release_signature_invalid',
        `the downgrade signature of ${version} (from ${from}) is not valid for any release public key this cloud was started with`,
      );
    this.table.setDowngradeSignature(version, signature, from);
    this.o.log.info({ version, from }, 'release may now be installed as a downgrade');
    return this.releaseView(this.table.getRelease(version)!);
  }

  getRelease(version: string): Record<string, unknown> {
    const r = this.table.getRelease(version);
    if (!r) throw new ApiError(404, 'release_not_found', `no release ${version}`);
    return this.releaseView(r);
  }

  listReleases(): { data: Record<string, unknown>[] } {
    return { data: this.table.listReleases().map((r) => this.releaseView(r)) };
  }

  /** The artifact's file, for a terminal's download (streamed, with HTTP Range). */
  async artifact(version: string): Promise<string> {
    const r = this.table.getRelease(version);
    if (!r) throw new ApiError(404, 'release_not_found', `no release ${version}`);
    await access(r.file).catch(() => {
      throw new ApiError(
        404,
        'release_not_found',
        `the artifact of release ${version} is missing on the cloud`,
      );
    });
    return r.file;
  }

  private releaseView(r: ReleaseRow): Record<string, unknown> {
    return {
      object: 'release',
      ...descriptor(r, true),
      downgradeAllowed: Boolean(r.downgradeSignature),
      createdAt: new Date(r.createdAt).toISOString(),
    };
  }

  private view(r: CloudActionRow): ActionView {
    const iso = (ms: number) => new Date(ms).toISOString();
    return {
      id: r.id,
      object: 'terminal_action',
      terminalId: r.terminalId,
      type: r.type,
      params: JSON.parse(r.params) as Record<string, unknown>,
      status: r.status,
      reason: r.reason,
      step: r.step,
      percent: r.percent,
      createdAt: iso(r.createdAt),
      updatedAt: iso(r.updatedAt),
      expiresAt: iso(r.expiresAt),
      deliveredAt: r.deliveredAt === null ? null : iso(r.deliveredAt),
    };
  }
}

function descriptor(r: ReleaseRow, withDowngrade = false): ReleaseDescriptor {
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
