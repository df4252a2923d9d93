import { randomUUID } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import {
  ACTION_TYPES,
  type ActionProgress,
  type ActionStatus,
  type ActionType,
  CreateActionBody,
  canMove,
  checkLogSpan,
  isFinal,
  MAX_LOG_BYTES,
  type RunAction,
} from '../../protocol/actions.js';
import { scrub } from '../../protocol/redaction.js';
import { Refusal } from '../../protocol/refusal.js';
import { compileValidator } from '../../protocol/schema-validation.js';
import { parseBody } from '../body-validation.js';
import type { CloudBus } from '../cloud-events.js';
import { unixSeconds, unixSecondsOrNull } from '../rest-time.js';
import type { CloudActionRow, CloudStore } from '../store/store-types.js';
import { startSweep } from '../sweep.js';
import { descriptor } from './release-service.js';

/**
 * Terminal actions (`POST /v1/terminals/{id}/actions`); the releases an update installs are
 * release-service.ts. An action is `queued` until the terminal answers its `RunAction`; one for a terminal that is
 * offline waits and is sent after its next `Hello`; one never delivered before `expiresAt`
 * fails with the reason. Statuses only move forward (queued → processing → completed | failed).
 */
export interface ActionServiceOptions {
  store: CloudStore;
  now(): number;
  defaultTtlSec: number;
  /** Says `action.queued` (deliver it now if the terminal is connected) and `action.finished` (inside the transaction that finished it). */
  events: CloudBus;
  /** How often undelivered actions are checked for expiry. */
  sweepMs: number;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

export interface ActionView {
  id: string;
  object: 'terminal_action';
  terminalId: string;
  type: ActionType;
  /** The same as `type`, under VINR's name. */
  action: ActionType;
  params: Record<string, unknown>;
  status: CloudActionRow['status'];
  reason: string | null;
  step: string | null;
  percent: number | null;
  /** Unix seconds, as every REST time. */
  createdAt: number;
  updatedAt: number;
  expiresAt: number;
  deliveredAt: number | null;
  /** collect_logs, once completed: where its bundle is (gzipped text, admin token). */
  logs?: string;
}

const createBody = compileValidator(CreateActionBody);

export class ActionService {
  private sweepTimer: NodeJS.Timeout | undefined;

  constructor(private readonly o: ActionServiceOptions) {}

  private get table() {
    return this.o.store.actions;
  }

  private get releases() {
    return this.o.store.releases;
  }

  async create(terminalId: string, body: unknown): Promise<ActionView> {
    const { action, type, ...rest } = parseBody(createBody, body, 'invalid_action');
    if (action !== undefined && type !== undefined && action !== type)
      throw new Refusal(
        'invalid_action',
        "type and action are the same field (action is VINR's name): give one",
      );
    const chosen = type ?? action;
    if (chosen === undefined)
      throw new Refusal(
        'invalid_action',
        `the action is required: type (or action) one of ${ACTION_TYPES.join(', ')}`,
      );
    const b = { ...rest, type: chosen };
    const terminal = await this.o.store.terminals.get(terminalId);
    if (!terminal) throw new Refusal('not_found', `no terminal ${terminalId}`);
    if (terminal.deactivatedAt !== null)
      throw new Refusal('terminal_deactivated', `terminal ${terminalId} is deactivated`);
    let params: Record<string, unknown> = {};
    const given = Object.keys(b.params ?? {});
    const only = (allowed: string[]) => {
      const other = given.filter((k) => !allowed.includes(k));
      if (other.length > 0)
        throw new Refusal(
          'invalid_action',
          allowed.length === 0
            ? `${b.type} takes no params`
            : `${b.type} takes only ${allowed.join(', ')} in params, not ${other.join(', ')}`,
        );
    };
    // `now`: the operator's "at once" — a reboot or an update's switch does not wait for the
    // terminal's maintenance window (a busy lease still holds it).
    const now = b.params?.now === true ? { now: true } : {};
    if (b.type === 'update') {
      only(['version', 'allowDowngrade', 'now']);
      const version = b.params?.version;
      if (!version) throw new Refusal('invalid_action', 'an update needs params.version');
      const release = await this.releases.get(version);
      if (!release)
        throw new Refusal(
          'release_not_found',
          `no release ${version}; publish it with PUT /v1/releases/${version}`,
        );
      // The operator's allowDowngrade only asks; the release key's downgrade signature (sent with
      // the release only then) is what lets a terminal install an older version.
      params = {
        release: descriptor(release, b.params?.allowDowngrade === true),
        ...(b.params?.allowDowngrade ? { allowDowngrade: true } : {}),
        ...now,
      };
    } else if (b.type === 'reboot') {
      only(['now']);
      params = now;
    } else if (b.type === 'collect_logs') {
      only(['since', 'until', 'level']);
      const p = b.params ?? {};
      if (!p.since || !p.until)
        throw new Refusal('invalid_action', 'collect_logs needs params.since and params.until (ISO 8601)');
      checkLogSpan({ since: p.since, until: p.until }, this.o.now());
      params = { since: p.since, until: p.until, ...(p.level ? { level: p.level } : {}) };
    } else only([]);
    const at = this.o.now();
    const id = `act_${randomUUID().replaceAll('-', '').slice(0, 24)}`;
    await this.table.insert({
      id,
      terminalId,
      type: b.type,
      params: JSON.stringify(params),
      createdAt: at,
      expiresAt: at + (b.ttlSeconds ?? this.o.defaultTtlSec) * 1000,
    });
    this.o.log.info({ terminalId, actionId: id, type: b.type }, 'action queued');
    setImmediate(() =>
      this.o.events
        .emit('action.queued', { terminalId })
        .catch((err: Error) => this.o.log.warn({ terminalId, err: err.message }, 'action not sent at once')),
    );
    return this.view((await this.table.get(id))!);
  }

  async get(terminalId: string, actionId: string): Promise<ActionView> {
    const row = await this.table.get(actionId);
    if (!row || row.terminalId !== terminalId)
      throw new Refusal('action_not_found', `no action ${actionId} for terminal ${terminalId}`);
    return this.view(row);
  }

  async list(terminalId: string): Promise<{ data: ActionView[] }> {
    if (!(await this.o.store.terminals.get(terminalId)))
      throw new Refusal('not_found', `no terminal ${terminalId}`);
    return { data: (await this.table.list(terminalId, 100)).map((r) => this.view(r)) };
  }

  /** Actions to send to a terminal that said Hello (or is connected when one is queued). */
  async pending(terminalId: string): Promise<RunAction[]> {
    const now = this.o.now();
    return (await this.table.queued(terminalId))
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
  async delivered(terminalId: string, actionId: string, p: ActionProgress): Promise<void> {
    await this.apply(terminalId, actionId, p, true);
  }

  /** An `ActionStatus` from the terminal. */
  async statusReported(terminalId: string, s: ActionStatus): Promise<void> {
    await this.apply(terminalId, s.actionId, s, true);
  }

  private async apply(
    terminalId: string,
    actionId: string,
    p: ActionProgress,
    delivered: boolean,
  ): Promise<void> {
    const row = await this.table.get(actionId);
    if (!row || row.terminalId !== terminalId) {
      this.o.log.warn({ terminalId, actionId }, 'status for an action this terminal does not have; ignored');
      return;
    }
    // Statuses arrive in order from the agent's outbox; an old one after a final one is ignored.
    if (!canMove(row.status, p.status)) return;
    // The lock flag and the webhook event are written in the transaction that finishes the action.
    await this.o.store.transaction(async () => {
      const now = this.o.now();
      await this.table.update(actionId, p, now, delivered ? now : null);
      if (p.status === 'completed' && (row.type === 'lock' || row.type === 'unlock'))
        await this.o.store.terminals.setLocked(terminalId, row.type === 'lock');
      if (isFinal(p.status))
        await this.o.events.emit('action.finished', {
          terminalId,
          actionId,
          status: p.status as 'completed' | 'failed',
          reason: p.reason,
        });
    });
    if (isFinal(p.status))
      this.o.log.info({ terminalId, actionId, status: p.status, reason: p.reason }, 'action finished');
  }

  /** Fails actions that were never delivered before they expired. */
  async sweep(): Promise<void> {
    const now = this.o.now();
    for (const r of await this.table.expired(now)) {
      const reason = `expired: the terminal did not connect before ${new Date(r.expiresAt).toISOString()}`;
      await this.o.store.transaction(async () => {
        await this.table.update(r.id, { status: 'failed', reason, step: null, percent: null }, now, null);
        await this.o.events.emit('action.finished', {
          terminalId: r.terminalId,
          actionId: r.id,
          status: 'failed',
          reason,
        });
      });
    }
  }

  start(): void {
    this.sweepTimer = startSweep(
      () => this.sweep(),
      this.o.sweepMs,
      (err) => this.o.log.warn({ err: err.message }, 'action sweep failed; tried again at the next'),
    );
  }

  stop(): void {
    clearInterval(this.sweepTimer);
  }

  /**
   * A collect_logs upload from the terminal (its client certificate named it): only for its own
   * action, while it runs, once; a gzip of at most MAX_LOG_BYTES unpacked (no bomb gets further),
   * scrubbed again here so that the cloud never keeps a PAN or a secret whatever the agent sent.
   */
  async uploadLogs(
    terminalId: string,
    actionId: string,
    body: Buffer,
  ): Promise<{ actionId: string; size: number }> {
    const row = await this.table.get(actionId);
    if (!row || row.terminalId !== terminalId || row.type !== 'collect_logs')
      throw new Refusal('action_not_found', `no collect_logs action ${actionId} for this terminal`);
    if (isFinal(row.status))
      throw new Refusal('invalid_state', `action ${actionId} is ${row.status} already`);
    let text: string;
    try {
      text = gunzipSync(body, { maxOutputLength: MAX_LOG_BYTES + 4096 }).toString('utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new Refusal(
        'invalid_logs',
        code === 'ERR_BUFFER_TOO_LARGE'
          ? `the logs unpack to more than ${MAX_LOG_BYTES} bytes`
          : 'the logs are not a gzip stream',
      );
    }
    const gzip = gzipSync(scrub(text));
    const stored = await this.o.store.logBundles.put({
      actionId,
      terminalId,
      gzip,
      size: gzip.length,
      receivedAt: this.o.now(),
    });
    if (!stored) throw new Refusal('invalid_state', `action ${actionId} has its logs already`);
    this.o.log.info({ terminalId, actionId, size: gzip.length }, 'logs received');
    return { actionId, size: gzip.length };
  }

  /** The stored bundle of a collect_logs action (gzipped text). */
  async logs(terminalId: string, actionId: string): Promise<Buffer> {
    const b = await this.o.store.logBundles.get(actionId);
    if (!b || b.terminalId !== terminalId)
      throw new Refusal('not_found', `no logs for action ${actionId} of terminal ${terminalId}`);
    return Buffer.from(b.gzip);
  }

  async locked(terminalId: string): Promise<boolean> {
    return await this.o.store.terminals.locked(terminalId);
  }

  private view(r: CloudActionRow): ActionView {
    return {
      id: r.id,
      object: 'terminal_action',
      terminalId: r.terminalId,
      type: r.type,
      action: r.type,
      params: JSON.parse(r.params) as Record<string, unknown>,
      status: r.status,
      reason: r.reason,
      step: r.step,
      percent: r.percent,
      createdAt: unixSeconds(r.createdAt),
      updatedAt: unixSeconds(r.updatedAt),
      expiresAt: unixSeconds(r.expiresAt),
      deliveredAt: unixSecondsOrNull(r.deliveredAt),
      ...(r.type === 'collect_logs' && r.status === 'completed'
        ? {
            logs: `/v1/terminals/${encodeURIComponent(r.terminalId)}/actions/${encodeURIComponent(r.id)}/logs`,
          }
        : {}),
    };
  }
}
