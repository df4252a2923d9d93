import { randomUUID } from 'node:crypto';
import type { DiagnosticsReport } from '../../protocol/messages.js';
import type { CloudMetrics } from '../cloud-metrics.js';
import type { CloudStore, LinkCallRow, TerminalRow } from '../store/store-types.js';
import type { AgentLinks } from './agent-links.js';

/** What the gateway in this process does with a call routed to it (cloud/gateway/agent-gateway.ts). */
export interface LocalGateway {
  pushDesiredConfig(terminalId: string): Promise<void>;
  deliverActions(terminalId: string): Promise<void>;
  pushProfile(terminalId: string): Promise<void>;
  deactivate(terminalId: string, reason: string): void;
}

export interface LinkRouterOptions {
  /** This process's id among the gateways (random at each start: gateways are stateless). */
  gatewayId: string;
  store: Pick<CloudStore, 'terminals' | 'gateways' | 'linkCalls' | 'doorbell' | 'poolStats'>;
  local: AgentLinks;
  /** The gateway of this process (built after the router: asked for when a call comes). */
  gateway: () => LocalGateway;
  now(): number;
  /** A gateway not heard of for this long is dead: its links are expired. */
  leaseMs: number;
  /** How often the lease is renewed, the live gateways read, and calls not rung for taken. */
  sweepMs: number;
  /** How long a routed request waits for the other gateway beyond the call's own timeout. */
  routeGraceMs: number;
  log: { warn(obj: object, msg: string): void };
  metrics?: CloudMetrics;
}

type Ping = { connected: false } | { connected: true; answered: boolean; rttMs: number; error?: string };
type Answer = { ok: unknown } | { error: string } | { moved: true };

/**
 * Every cloud → terminal call, whichever gateway holds the terminal's link. A link open in this
 * process is used directly; otherwise the call is written as a row for the gateway the terminal's
 * presence names (alive by its lease), and that gateway is rung. Fire-and-forget work (a config
 * to push, actions to deliver, a new profile, a deactivation, a close) needs no answer: its state
 * is durable already (the desired config, the queued actions, the deactivated row), and a
 * terminal that reconnects anywhere gets it at Hello. Requests (diagnostics, ping, rotate) wait
 * for the answer row with a timeout, so "not connected anywhere" and "connected, not answering"
 * stay apart. With SQLite (one process) every link is local and the same code runs in-process.
 */
export class LinkRouter {
  private live = new Set<string>();
  private readonly waiting = new Map<string, (answer: string | null) => void>();
  private timer: NodeJS.Timeout | undefined;
  private sweeping = false;

  private lastSweepAt = 0;

  constructor(private readonly o: LinkRouterOptions) {
    this.live.add(o.gatewayId);
    const m = o.metrics;
    if (!m) return;
    m.gauge(
      'posagent_connected_terminals',
      'terminals whose link is open on this gateway',
      () => [...o.local.connectedIds()].length,
    );
    m.gauge(
      'posagent_live_gateways',
      'gateways alive by their lease, as this one last read them',
      () => this.live.size,
    );
    const pool = o.store.poolStats;
    if (pool) {
      m.gauge('posagent_db_pool_connections', 'database connections in the pool', () => pool().total);
      m.gauge('posagent_db_pool_idle', 'idle database connections in the pool', () => pool().idle);
      m.gauge('posagent_db_pool_waiting', 'queries waiting for a database connection', () => pool().waiting);
    }
    m.describe('posagent_routed_calls_total', 'calls written for another gateway, by kind');
    m.describe(
      'posagent_routed_request_seconds',
      'routed requests, asked until answered or given up, by kind',
    );
    m.describe(
      'posagent_doorbell_lag_seconds',
      'routed calls, written until taken by the gateway holding the link',
    );
  }

  /** Ready for the balancer: its lease was renewed and the store answered within three sweeps. */
  ready(): boolean {
    return this.o.now() - this.lastSweepAt < 3 * this.o.sweepMs;
  }

  get gatewayId(): string {
    return this.o.gatewayId;
  }

  async start(): Promise<void> {
    await this.o.store.doorbell.listen(this.o.gatewayId, (m) => this.onRing(m));
    await this.sweep();
    this.timer = setInterval(() => void this.sweep(), this.o.sweepMs);
    this.timer.unref();
  }

  /** Stops sweeping and ends the lease at once: the other gateways stop routing here. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.o.store.gateways.renewLease(this.o.gatewayId, this.o.now()).catch(() => undefined);
  }

  /** The lease renewed, the live gateways read, dead ones expired, calls not rung taken. */
  private async sweep(): Promise<void> {
    if (this.sweeping) return;
    this.sweeping = true;
    try {
      const now = this.o.now();
      await this.o.store.gateways.renewLease(this.o.gatewayId, now + this.o.leaseMs);
      this.live = new Set([...(await this.o.store.gateways.live(now)), this.o.gatewayId]);
      if (await this.o.store.gateways.lead()) await this.o.store.gateways.expire(now);
      await this.o.store.linkCalls.prune(now - 60_000);
      await this.takeWork();
      this.lastSweepAt = now;
    } catch (err) {
      this.o.log.warn({ err: (err as Error).message }, 'gateway sweep failed; tried again at the next');
    } finally {
      this.sweeping = false;
    }
  }

  /** Connected: its link is open here, or its presence names a gateway alive by its lease. */
  connected(row: Pick<TerminalRow, 'id' | 'linkGateway'>): boolean {
    return this.o.local.isConnected(row.id) || (row.linkGateway !== null && this.live.has(row.linkGateway));
  }

  async connectedIds(): Promise<string[]> {
    const ids = new Set(await this.o.store.gateways.connectedIds(this.o.now()));
    for (const id of this.o.local.connectedIds()) ids.add(id);
    return [...ids];
  }

  /** The live gateway holding the terminal's link, other than this one (null: here or nowhere). */
  private async remoteOwner(terminalId: string): Promise<string | null> {
    if (this.o.local.isConnected(terminalId)) return null;
    const row = await this.o.store.terminals.get(terminalId);
    const g = row?.linkGateway ?? null;
    return g !== null && g !== this.o.gatewayId && this.live.has(g) ? g : null;
  }

  private async write(terminalId: string, gatewayId: string, kind: string, payload: unknown, ttlMs: number) {
    const now = this.o.now();
    const id = `call_${randomUUID()}`;
    await this.o.store.linkCalls.insert({
      id,
      terminalId,
      gatewayId,
      kind,
      payload: JSON.stringify(payload),
      fromGateway: this.o.gatewayId,
      createdAt: now,
      expiresAt: now + ttlMs,
    });
    this.o.metrics?.count('posagent_routed_calls_total', ['kind', kind]);
    return id;
  }

  private ring(gatewayId: string, message: string): void {
    this.o.store.doorbell
      .ring(gatewayId, message)
      .catch((err: Error) =>
        this.o.log.warn({ gatewayId, err: err.message }, 'doorbell not rung; the sweep will find the call'),
      );
  }

  /** Fire and forget: done here when the link is here, else written for its gateway and rung. */
  private async send(terminalId: string, kind: string, payload: unknown, here: () => unknown): Promise<void> {
    const owner = await this.remoteOwner(terminalId);
    if (owner === null) {
      await here();
      return;
    }
    await this.write(terminalId, owner, kind, payload, 60_000);
    this.ring(owner, 'work');
  }

  pushConfig(terminalId: string): Promise<void> {
    return this.send(terminalId, 'config', {}, () => this.o.gateway().pushDesiredConfig(terminalId));
  }
  deliverActions(terminalId: string): Promise<void> {
    return this.send(terminalId, 'actions', {}, () => this.o.gateway().deliverActions(terminalId));
  }
  pushProfile(terminalId: string): Promise<void> {
    return this.send(terminalId, 'profile', {}, () => this.o.gateway().pushProfile(terminalId));
  }
  deactivate(terminalId: string, reason: string): Promise<void> {
    return this.send(terminalId, 'deactivate', { reason }, () =>
      this.o.gateway().deactivate(terminalId, reason),
    );
  }
  async close(terminalId: string, code: number, reason: string): Promise<boolean> {
    if (this.o.local.close(terminalId, code, reason)) return true;
    const owner = await this.remoteOwner(terminalId);
    if (owner === null) return false;
    await this.write(terminalId, owner, 'close', { code, reason }, 60_000);
    this.ring(owner, 'work');
    return true;
  }

  /** A request to the gateway holding the link: its answer, or null when none came in time. */
  private async ask(owner: string, terminalId: string, kind: string, payload: unknown, waitMs: number) {
    const id = await this.write(terminalId, owner, kind, payload, waitMs);
    const answered = new Promise<string | null>((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        resolve(null);
      }, waitMs);
      timer.unref();
      this.waiting.set(id, (a) => {
        clearTimeout(timer);
        this.waiting.delete(id);
        resolve(a);
      });
    });
    this.ring(owner, 'work');
    const asked = performance.now();
    const text = await answered;
    this.o.metrics?.observe(
      'posagent_routed_request_seconds',
      ['kind', kind],
      (performance.now() - asked) / 1000,
    );
    return text === null ? null : (JSON.parse(text) as Answer);
  }

  async ping(terminalId: string, timeoutMs: number): Promise<Ping> {
    const owner = await this.remoteOwner(terminalId);
    if (owner === null) return this.o.local.ping(terminalId, timeoutMs);
    const started = performance.now();
    const a = await this.ask(owner, terminalId, 'ping', { timeoutMs }, timeoutMs + this.o.routeGraceMs);
    if (a === null) {
      const rttMs = Math.round(performance.now() - started);
      return {
        connected: true,
        answered: false,
        rttMs,
        error: `gateway ${owner} holding the link did not answer`,
      };
    }
    if ('ok' in a) return a.ok as Ping;
    return { connected: false };
  }

  private async request<T>(
    terminalId: string,
    kind: string,
    here: () => Promise<T>,
    waitMs: number,
  ): Promise<T> {
    const owner = await this.remoteOwner(terminalId);
    if (owner === null) return here();
    const a = await this.ask(owner, terminalId, kind, {}, waitMs);
    if (a === null) throw new Error(`gateway ${owner} holding the link did not answer in ${waitMs} ms`);
    if ('ok' in a) return a.ok as T;
    if ('error' in a) throw new Error(a.error);
    throw new Error(`terminal ${terminalId} is not connected`);
  }

  requestDiagnostics(terminalId: string): Promise<DiagnosticsReport> {
    return this.request(terminalId, 'diagnostics', () => this.o.local.requestDiagnostics(terminalId), 35_000);
  }
  rotateCertificate(terminalId: string): Promise<{ accepted: true }> {
    return this.request(terminalId, 'rotate', () => this.o.local.rotateCertificate(terminalId), 35_000);
  }

  /** Resolves true once the terminal said Hello on any gateway, false after `timeoutMs`. */
  async whenHello(terminalId: string, timeoutMs: number): Promise<boolean> {
    const deadline = this.o.now() + timeoutMs;
    const here = this.o.local.whenHello(terminalId, timeoutMs);
    for (;;) {
      const row = await this.o.store.terminals.get(terminalId);
      if (row && row.linkGateway !== null && this.live.has(row.linkGateway)) return true;
      const left = deadline - this.o.now();
      if (left <= 0) return false;
      const hereNow = await Promise.race([
        here,
        new Promise<'later'>((r) => setTimeout(() => r('later'), Math.min(250, left))),
      ]);
      if (hereNow === true) return true;
    }
  }

  private onRing(message: string): void {
    if (message === 'work') {
      void this.takeWork().catch((err: Error) =>
        this.o.log.warn({ err: err.message }, 'routed calls not taken'),
      );
      return;
    }
    if (message.startsWith('answer ')) {
      const id = message.slice('answer '.length);
      const waiter = this.waiting.get(id);
      if (!waiter) return;
      void this.o.store.linkCalls.get(id).then(
        (row) => waiter(row?.answer ?? null),
        () => waiter(null),
      );
    }
  }

  /** The calls written for this gateway: each done once (taken), requests answered. */
  private async takeWork(): Promise<void> {
    for (;;) {
      const now = this.o.now();
      const calls = await this.o.store.linkCalls.take(this.o.gatewayId, now, 100);
      for (const c of calls)
        this.o.metrics?.observe('posagent_doorbell_lag_seconds', undefined, (now - c.createdAt) / 1000);
      for (const c of calls)
        void this.handle(c).catch((err: Error) =>
          this.o.log.warn({ terminalId: c.terminalId, kind: c.kind, err: err.message }, 'routed call failed'),
        );
      if (calls.length < 100) return;
    }
  }

  private async handle(c: LinkCallRow): Promise<void> {
    const p = JSON.parse(c.payload) as { reason?: string; code?: number; timeoutMs?: number };
    const here = this.o.local.isConnected(c.terminalId);
    switch (c.kind) {
      case 'config':
        return this.o.gateway().pushDesiredConfig(c.terminalId);
      case 'actions':
        return this.o.gateway().deliverActions(c.terminalId);
      case 'profile':
        return this.o.gateway().pushProfile(c.terminalId);
      case 'deactivate':
        return this.o.gateway().deactivate(c.terminalId, p.reason ?? 'deactivated');
      case 'close':
        this.o.local.close(c.terminalId, p.code ?? 1000, p.reason ?? 'closed');
        return;
    }
    let answer: Answer;
    if (!here) answer = { moved: true };
    else
      try {
        answer = {
          ok:
            c.kind === 'ping'
              ? await this.o.local.ping(c.terminalId, p.timeoutMs ?? 5000)
              : c.kind === 'diagnostics'
                ? await this.o.local.requestDiagnostics(c.terminalId)
                : await this.o.local.rotateCertificate(c.terminalId),
        };
      } catch (err) {
        answer = { error: (err as Error).message };
      }
    await this.o.store.linkCalls.answer(c.id, JSON.stringify(answer));
    this.ring(c.fromGateway, `answer ${c.id}`);
  }
}
