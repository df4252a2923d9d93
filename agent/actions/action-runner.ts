import type { ActionProgress, RunAction } from '../../protocol/actions.js';
import type { EventBus } from '../events/event-bus.js';
import { type ActionChange, type ActionRow, type ActionStore, progressOf } from './action-store.js';
import type { BusyLeases } from './busy-leases.js';
import type { Updates } from './lazy-updater.js';

/**
 * Runs what the cloud asks (`RunAction`): each action is in the store before it is acknowledged,
 * a repeat of its id is answered with where it is and never runs twice, and every step is written
 * with its `ActionStatus` for the cloud in one transaction. Reboots and updates run one at a time,
 * in order; lock and unlock at once.
 *
 *   lock / unlock: at once, persisted with the action's completion.
 *   reboot: waits for busy leases, records the boot id, runs the reboot command; completed when
 *           the agent starts again under another boot id, failed when it starts under the same one.
 *   update: software-update.ts.
 */
export interface ActionRunnerDeps {
  store: ActionStore;
  leases: BusyLeases;
  updater: Updates;
  events: EventBus;
  bootId: string;
  /** Runs the device's reboot command; resolves when the command has returned. */
  reboot(): Promise<void>;
  /** After a reboot command that returned, the action fails if the agent still runs this long after. */
  rebootTimeoutMs: number;
  /** Something was written for the cloud. */
  onReported(): void;
  now(): number;
  log: {
    info(obj: object, msg: string): void;
    warn(obj: object, msg: string): void;
    error(obj: object, msg: string): void;
  };
}

export class ActionRunner {
  private chain: Promise<void> = Promise.resolve();
  private readonly stopping = new AbortController();
  private rebootTimer: NodeJS.Timeout | undefined;

  constructor(private readonly d: ActionRunnerDeps) {}

  /** The `RunAction` handler: persist (first time only), answer with the current progress, run. */
  receive(p: RunAction): ActionProgress {
    const at = this.at();
    const { row, isNew } = this.d.store.receive(p, at);
    if (!isNew) {
      this.d.log.info(
        { actionId: p.actionId, status: row.state },
        'action repeated; answered with its status',
      );
      return progressOf(row);
    }
    this.announce(row);
    this.d.log.info({ actionId: row.id, type: row.type }, 'action received');
    if (Date.parse(p.expiresAt) < this.d.now())
      return progressOf(this.report(row.id, { state: 'failed', reason: `expired at ${p.expiresAt}` }));
    this.schedule(row);
    return progressOf(row);
  }

  /** Picks up what a previous run left open: finished reboots, updates in any step, actions not run yet. */
  async start(): Promise<void> {
    for (const row of this.d.store.open()) {
      if (row.type === 'reboot' && row.step === 'rebooting') this.finishReboot(row);
      else if (row.type === 'update') {
        if (await this.d.updater.atStart(row)) this.schedule(row);
      } else this.schedule(row);
    }
  }

  /** The link is online: an update on trial commits. */
  onOnline(): void {
    this.d.updater
      .onOnline()
      .catch((err: unknown) => this.d.log.error({ err }, 'committing the update on trial failed'));
  }

  stop(): void {
    this.stopping.abort();
    clearTimeout(this.rebootTimer);
    this.d.updater.stop();
  }

  /** Records a change, tells the cloud (outbox) and the POS app (event). */
  report(id: string, change: ActionChange): ActionRow {
    const row = this.d.store.progress(id, change, this.at());
    this.announce(row);
    this.d.onReported();
    return row;
  }

  note(id: string, change: Omit<ActionChange, 'state'>): ActionRow {
    return this.d.store.note(id, change, this.at());
  }

  /** Waits for busy leases, with the action `processing` and the lease named as the reason. */
  whenFree(id: string, signal: AbortSignal): Promise<void> {
    return this.d.leases.whenFree((lease) => {
      this.report(id, {
        step: 'waiting',
        reason: `waiting for a busy lease: ${lease.reason} (until ${lease.expiresAt})`,
      });
    }, signal);
  }

  private schedule(row: ActionRow): void {
    // A lock never waits behind a reboot or an update held by a busy lease.
    if (row.type === 'lock' || row.type === 'unlock') {
      this.execute(row).catch((err: unknown) =>
        this.d.log.error({ actionId: row.id, err }, 'action failed unexpectedly'),
      );
      return;
    }
    this.chain = this.chain
      .then(() => (this.stopping.signal.aborted ? undefined : this.execute(row)))
      .catch((err: Error) =>
        this.d.log.error({ actionId: row.id, err: err.message }, 'action failed unexpectedly'),
      );
  }

  private async execute(row: ActionRow): Promise<void> {
    switch (row.type) {
      case 'lock':
      case 'unlock': {
        const locked = row.type === 'lock';
        this.announce(this.d.store.setLocked(row.id, locked, this.at()));
        this.d.onReported();
        this.d.events.publish('lock', { locked, actionId: row.id });
        this.d.log.warn({ actionId: row.id }, locked ? 'terminal locked by the cloud' : 'terminal unlocked');
        return;
      }
      case 'reboot':
        return this.reboot(row);
      case 'update':
        return this.d.updater.run(row, this.stopping.signal);
    }
  }

  private async reboot(row: ActionRow): Promise<void> {
    try {
      await this.whenFree(row.id, this.stopping.signal);
    } catch {
      return; // stopping: the action stays open and runs at the next start
    }
    this.report(row.id, { step: 'rebooting', reason: null, detail: { bootId: this.d.bootId } });
    this.d.log.warn({ actionId: row.id }, 'rebooting the device');
    try {
      await this.d.reboot();
    } catch (err) {
      this.report(row.id, {
        state: 'failed',
        reason: `the reboot command failed: ${(err as Error).message}`,
      });
      return;
    }
    // A real reboot ends this process long before this fires.
    this.rebootTimer = setTimeout(() => {
      if (this.d.store.get(row.id)?.state !== 'processing') return;
      this.report(row.id, {
        state: 'failed',
        reason: `the reboot command returned but the device was still running ${Math.round(this.d.rebootTimeoutMs / 1000)} s later`,
      });
    }, this.d.rebootTimeoutMs);
    this.rebootTimer.unref();
  }

  private finishReboot(row: ActionRow): void {
    const before = (row.detail as { bootId?: string }).bootId;
    if (before !== this.d.bootId) {
      this.report(row.id, { state: 'completed', step: 'rebooted', reason: null });
      this.d.log.info({ actionId: row.id }, 'reboot completed (new boot id)');
    } else {
      this.report(row.id, {
        state: 'failed',
        reason: 'the device did not reboot: the agent started again under the same boot id',
      });
    }
  }

  private announce(row: ActionRow): void {
    this.d.events.publish('action', { id: row.id, type: row.type, ...progressOf(row) });
  }

  private at(): string {
    return new Date(this.d.now()).toISOString();
  }
}
