import { stat } from 'node:fs/promises';
import { cloudDownload, cloudJson } from '../../cloud-access/cloud-client.js';
import type { ConfigFeature } from '../config/config-feature.js';
import type { Feature, FeatureContext } from '../feature.js';
import type { OutboxSender } from '../link/outbox-sender.js';
import { type LocalRoute, Reply } from '../local-api/local-api.js';
import { ActionRunner } from './action-runner.js';
import { progressOf } from './action-store.js';
import { BusyLeases } from './busy-leases.js';
import { runShellCommand } from './shell-command.js';
import { SoftwareUpdater } from './software-update.js';

/**
 * Remote actions (reboot, update, lock, unlock) from `RunAction`, one at a time, recorded before
 * they are answered; busy leases (`/v1/busy`) hold off whatever interrupts a sale; the software
 * update is the agent's half of an update (download, verify, stage, switch, commit).
 */
export class ActionsFeature implements Feature {
  readonly name = 'actions';
  readonly runner: ActionRunner;
  readonly leases: BusyLeases;
  readonly handlers;
  readonly routes: LocalRoute[];

  constructor(ctx: FeatureContext, o: { outbox: OutboxSender; config: ConfigFeature }) {
    const { deps, store, now } = ctx;
    const settings = deps.settings;
    this.leases = new BusyLeases({ store: store.actions, now });
    const updater = new SoftwareUpdater({
      installDir: settings.installDir,
      stateDir: deps.paths.stateDir,
      releaseKeyFile: settings.releaseKeyFile,
      running: deps.softwareVersion,
      healthWindowMs: settings.updateHealthWindowSec * 1000,
      runInstaller: (step) => runShellCommand(settings.installCommand.replaceAll('{step}', step)),
      storeReserveBytes: async () => {
        const used = await stat(deps.paths.dbFile).then(
          (s) => s.size,
          () => 0,
        );
        return Math.max(0, settings.maxStoreMb * 1024 * 1024 - used);
      },
      download: async (version, file, onProgress, maxBytes) => {
        const tls = ctx.credentials.tls();
        await cloudDownload({
          maxBytes,
          cloudUrl: ctx.cloud.current(),
          caPem: tls.ca,
          cert: tls.cert,
          key: tls.key,
          proxy: ctx.proxy,
          path: `/v1/agent/releases/${encodeURIComponent(version)}/artifact`,
          file,
          onProgress,
        });
      },
      report: (id, change) => this.runner.report(id, change),
      note: (id, change) => this.runner.note(id, change),
      whenAllowed: (id, signal, now) => this.runner.whenAllowed(id, signal, now),
      restart: (reason) => deps.restart?.(reason),
      supervised: deps.restart !== undefined,
      onCommitted: () => ctx.storeSchema.dropSnapshot(deps.paths.stateDir),
      now,
      crashPoint: ctx.crashPoint,
      log: ctx.log,
    });
    this.runner = new ActionRunner({
      store: store.actions,
      leases: this.leases,
      updater,
      events: ctx.events,
      bootId: ctx.bootId,
      reboot: () => runShellCommand(settings.rebootCommand),
      rebootTimeoutMs: settings.rebootTimeoutSec * 1000,
      window: () => o.config.manager.current().config.maintenance ?? null,
      collectLogs: async (actionId, params) => {
        // Loaded on first use: most terminals never collect their logs.
        const { collectLogs } = await import('./log-collector.js');
        const logs = await collectLogs({ command: settings.logsCommand, params, nowMs: now() });
        const tls = ctx.credentials.tls();
        await cloudJson({
          cloudUrl: ctx.cloud.current(),
          caPem: tls.ca,
          cert: tls.cert,
          key: tls.key,
          proxy: ctx.proxy,
          method: 'PUT',
          path: `/v1/agent/actions/${encodeURIComponent(actionId)}/logs`,
          raw: { bytes: logs.gzip, contentType: 'application/gzip' },
          timeoutMs: 60_000,
        });
        return { lines: logs.lines, dropped: logs.dropped, bytes: logs.bytes };
      },
      onReported: () => o.outbox.wake(),
      now,
      log: ctx.log,
    });
    this.handlers = { RunAction: this.runner.receive.bind(this.runner) };
    this.routes = [
      {
        method: 'POST',
        pattern: /^\/v1\/busy$/,
        handle: async (_req, _p, body) => new Reply(201, this.leases.acquire(await body())),
      },
      { method: 'GET', pattern: /^\/v1\/busy$/, handle: () => ({ leases: this.leases.held() }) },
      {
        method: 'DELETE',
        pattern: /^\/v1\/busy\/([^/]+)$/,
        handle: (_req, p) => this.leases.release(p[0]!),
      },
      {
        method: 'GET',
        pattern: /^\/v1\/actions$/,
        handle: () => ({
          open: store.actions.open().map((a) => ({ id: a.id, type: a.type, ...progressOf(a) })),
        }),
      },
    ];
  }

  start(): Promise<void> {
    return this.runner.start();
  }

  stop(): void {
    this.runner.stop();
  }

  onOnline(): void {
    this.runner.onOnline();
  }
}
