import type { ActionProgress, CollectLogsParams, RunAction } from '../../protocol/actions.js';
import type { MaintenanceConfig } from '../../protocol/config-schema.js';
import type { EventBus } from '../events/event-bus.js';
import { sleepUnless } from '../interruptible-sleep.js';
import { type ActionChange, type ActionRow, type ActionStore, progressOf } from './action-store.js';
import type { BusyLeases } from './busy-leases.js';
import { describeWindow, inWindow, nextWindowStart } from './maintenance-window.js';
import type { SoftwareUpdater } from './software-update.js';

/**
 * Runs what the cloud asks (`RunAction`): each action is in the store before it is acknowledged,
 * a repeat of its id is answered with where it is and never runs twice, and every step is written
 * with its `ActionStatus` for the cloud in one transaction. Reboots and updates run one at a time,
 * in order; lock and unlock at once.
 *
 *   lock / unlock: at once, persisted with the action's completion.
 *   reboot and update wait for the maintenance window (the pushed config's, in the store's time
 *           zone) unless the operator said `now`, and inside it for busy leases (a lease that
 *           outlasts the window waits for the next one). The wait is the action's `waiting` step,
 *           in the store: a restart, or no link at all, waits the same.
 *   reboot: waits (above), records the boot id, runs the reboot command; completed when
 *           the agent starts again under another boot id, failed when it starts under the same one.
 *   update: software-update.ts.
 */
export interface ActionRunnerDeps {
  store: ActionStore;
  leases: BusyLeases;
  updater: SoftwareUpdater;
  events: EventBus;
  bootId: string;
  /** Runs the device's reboot command; resolves when the command has returned. */
  reboot(): Promise<void>;
  /** collect_logs: gathers, redacts, caps and uploads the logs the params ask for. */
  collectLogs(
    actionId: string,
    params: CollectLogsParams,
  ): Promise<{ lines: number; dropped: number; bytes: number }>;
  /** The maintenance window in force (the applied config's), or null: none. */
  window(): MaintenanceConfig | null;
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

  /** Aborted (and replaced) when a config is applied: a waiting action looks at its window again. */
  private configChanged = new AbortController();

  constructor(private readonly d: ActionRunnerDeps) {
    d.events.subscribe((e) => {
      if (e.event !== 'config' || e.data.status !== 'applied') return;
      const changed = this.configChanged;
      this.configChanged = new AbortController();
      changed.abort();
    });
  }

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

  /**
   * Reboot and update: the maintenance window first (unless `now`), then busy leases; should a
   * lease outlast the window, the next window.
   */
  async whenAllowed(id: string, signal: AbortSignal, now: boolean): Promise<void> {
    for (;;) {
      if (!now) await this.whenInWindow(id, signal);
      await this.whenFree(id, signal);
      const w = this.d.window();
      if (now || !w || inWindow(this.d.now(), w)) return;
    }
  }

  private async whenInWindow(id: string, signal: AbortSignal): Promise<void> {
    let reported: string | null = null;
    for (;;) {
      if (signal.aborted) throw signal.reason ?? new Error('stopped');
      const w = this.d.window();
      const t = this.d.now();
      if (!w || inWindow(t, w)) return;
      const opens = nextWindowStart(t, w);
      const reason = `waiting for the maintenance window ${describeWindow(w)}: opens ${new Date(opens).toISOString()}`;
      if (reason !== reported) {
        reported = reason;
        this.report(id, { step: 'waiting', reason });
        this.d.log.info(
          { actionId: id, opensAt: new Date(opens).toISOString() },
          'action waits for the maintenance window',
        );
      }
      // One timer to the opening (a new config looks again); none that wakes in between.
      await sleepUnless(Math.max(opens - t, 10), signal, this.configChanged.signal);
    }
  }

  private schedule(row: ActionRow): void {
    // A lock, or a look at the logs, never waits behind a reboot or an update held by a window or a lease.
    if (row.type === 'lock' || row.type === 'unlock' || row.type === 'collect_logs') {
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
      case 'collect_logs':
        return this.collectLogs(row);
      case 'update':
        return this.d.updater.run(row, this.stopping.signal);
    }
  }

  private async collectLogs(row: ActionRow): Promise<void> {
    this.report(row.id, { step: 'collecting', reason: null });
    try {
      const r = await this.d.collectLogs(row.id, row.params as CollectLogsParams);
      this.report(row.id, {
        state: 'completed',
        step: 'uploaded',
        reason: null,
        detail: { lines: r.lines, dropped: r.dropped, bytes: r.bytes },
      });
      this.d.log.info({ actionId: row.id, ...r }, 'logs collected and uploaded');
    } catch (err) {
      this.report(row.id, {
        state: 'failed',
        reason: `collecting the logs failed: ${(err as Error).message}`,
      });
    }
  }

  private async reboot(row: ActionRow): Promise<void> {
    try {
      await this.whenAllowed(row.id, this.stopping.signal, (row.params as { now?: boolean }).now === true);
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
