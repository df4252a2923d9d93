import { guarded, inBackground } from '../background-task.js';
import type { ConfigFeature } from '../config/config-feature.js';
import type { Feature, FeatureContext } from '../feature.js';
import type { OnlineLink } from '../link/cloud-link.js';
import type { LinkFeature } from '../link/link-feature.js';
import { type LocalRoute, Reply } from '../local-api/local-api.js';
import { maintainQueue } from './queue-maintenance.js';
import { TransactionForwarder } from './transaction-forwarder.js';
import { listTransactions } from './transaction-list.js';
import { TransactionQueue } from './transaction-queue.js';
import { toRecord } from './transaction-record.js';

/**
 * The POS app's sales: taken durably (`POST /v1/transactions`, within the offline limits of the
 * config, refused while locked or deactivated), forwarded while the link is up, their results
 * applied (`TransactionResult`), expired and pruned by the maintenance every minute.
 */
export class TransactionsFeature implements Feature {
  readonly name = 'transactions';
  readonly queue: TransactionQueue;
  readonly forwarder: TransactionForwarder;
  readonly handlers;
  readonly routes: LocalRoute[];
  private maintenance: NodeJS.Timeout | undefined;

  constructor(
    private readonly ctx: FeatureContext,
    private readonly o: { link: LinkFeature; config: ConfigFeature },
  ) {
    const { store, events, now } = ctx;
    this.forwarder = new TransactionForwarder({ store: store.transactions, events, now, log: ctx.log });
    this.queue = new TransactionQueue({
      store: store.transactions,
      events,
      now,
      online: () => o.link.link.snapshot().state === 'online',
      offlineMode: () => o.config.manager.current().config.offlineMode,
      locked: () => store.lock().locked,
      deactivated: () => o.link.deactivated(),
      dataPublicKey: () => ctx.credentials.dataPublicKey(),
      onStored: () => this.forwarder.wake(),
      beforeStore: () => ctx.storeSchema.beforeSale(),
    });
    this.handlers = { TransactionResult: this.forwarder.applyResults.bind(this.forwarder) };
    this.routes = [
      {
        method: 'POST',
        pattern: /^\/v1\/transactions$/,
        handle: async (_req, _p, body) => {
          const r = this.queue.submit(await body());
          return new Reply(r.status, r.record);
        },
      },
      { method: 'GET', pattern: /^\/v1\/transactions\/([^/]+)$/, handle: (_req, p) => this.queue.get(p[0]!) },
      {
        method: 'GET',
        pattern: /^\/v1\/transactions$/,
        handle: (req) =>
          listTransactions(store.transactions, new URL(req.url ?? '/', 'http://posagent').searchParams),
      },
      {
        method: 'POST',
        pattern: /^\/v1\/queue\/flush$/,
        handle: () => {
          o.link.link.retryNow();
          this.forwarder.wake();
          return { flushing: true, link: o.link.link.snapshot().state, queue: store.transactions.summary() };
        },
      },
    ];
  }

  start(): void {
    this.maintain();
    this.maintenance = setInterval(
      guarded('queue maintenance', () => this.maintain(), this.ctx.log),
      60_000,
    );
    this.maintenance.unref();
  }

  stop(): void {
    clearInterval(this.maintenance);
  }

  onOnline(link: OnlineLink): void {
    inBackground('forwarding', this.forwarder.runWhileOnline(link), this.ctx.log);
  }

  /** Expires what waited too long for the cloud and prunes what is finished. */
  private maintain(): void {
    const { store, events, now, deps, log } = this.ctx;
    const r = maintainQueue(
      store.transactions,
      now(),
      this.o.config.manager.current().config.offlineMode.maxAgeHours,
      deps.settings.retentionDays,
      // Each expired transaction is a `transaction` event with its record, like every other change.
      (row) => events.publish('transaction', toRecord(row)),
    );
    if (r.expired > 0) {
      log.warn(
        { expired: r.expired },
        'transactions expired before reaching the cloud; they will be reported',
      );
      this.forwarder.wake();
    }
  }
}
