import { randomUUID } from 'node:crypto';
import {
  ACTION_TYPES,
  type ActionProgress,
  type ActionStatus,
  type ActionType,
  CreateActionBody,
  canMove,
  isFinal,
  type RunAction,
} from '../../protocol/actions.js';
import { Refusal } from '../../protocol/refusal.js';
import { compileValidator } from '../../protocol/schema-validation.js';
import { parseBody } from '../body-validation.js';
import type { CloudBus } from '../cloud-events.js';
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
  createdAt: string;
  updatedAt: string;
  expiresAt: string;
  deliveredAt: string | null;
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

  create(terminalId: string, body: unknown): ActionView {
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
    const terminal = this.o.store.terminals.get(terminalId);
    if (!terminal) throw new Refusal('not_found', `no terminal ${terminalId}`);
    if (terminal.deactivatedAt !== null)
      throw new Refusal('terminal_deactivated', `terminal ${terminalId} is deactivated`);
    let params: Record<string, unknown> = {};
    if (b.type === 'update') {
      const version = b.params?.version;
      if (!version) throw new Refusal('invalid_action', 'an update needs params.version');
      const release = this.releases.get(version);
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
      };
    } else if (b.params && Object.keys(b.params).length > 0) {
      throw new Refusal('invalid_action', `${b.type} takes no params`);
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
    setImmediate(() => this.o.events.emit('action.queued', { terminalId }));
    return this.view(this.table.get(id)!);
  }

  get(terminalId: string, actionId: string): ActionView {
    const row = this.table.get(actionId);
    if (!row || row.terminalId !== terminalId)
      throw new Refusal('action_not_found', `no action ${actionId} for terminal ${terminalId}`);
    return this.view(row);
  }

  list(terminalId: string): { data: ActionView[] } {
    if (!this.o.store.terminals.get(terminalId)) throw new Refusal('not_found', `no terminal ${terminalId}`);
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
      const now = this.o.now();
      this.table.update(actionId, p, now, delivered ? now : null);
      if (p.status === 'completed' && (row.type === 'lock' || row.type === 'unlock'))
        this.o.store.terminals.setLocked(terminalId, row.type === 'lock');
      if (isFinal(p.status))
        this.o.events.emit('action.finished', {
          terminalId,
          actionId,
          status: p.status as 'completed' | 'failed',
        });
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
          null,
        );
        this.o.events.emit('action.finished', { terminalId: r.terminalId, actionId: r.id, status: 'failed' });
      });
    }
  }

  start(): void {
    this.sweepTimer = startSweep(() => this.sweep(), this.o.sweepMs);
  }

  stop(): void {
    clearInterval(this.sweepTimer);
  }

  locked(terminalId: string): boolean {
    return this.o.store.terminals.locked(terminalId);
  }

  private view(r: CloudActionRow): ActionView {
    const iso = (ms: number) => new Date(ms).toISOString();
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
      createdAt: iso(r.createdAt),
      updatedAt: iso(r.updatedAt),
      expiresAt: iso(r.expiresAt),
      deliveredAt: r.deliveredAt === null ? null : iso(r.deliveredAt),
    };
  }
}
