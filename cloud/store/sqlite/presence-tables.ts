import { EventEmitter } from 'node:events';
import { GATEWAY_SQL, LINK_CALL_SQL } from '../presence-sql.js';
import type { Doorbell, GatewayStore, Immediate, LinkCallRow, LinkCallStore } from '../store-types.js';
import { type Db, prepareAll } from './statements.js';

export class SqliteGateways implements Immediate<GatewayStore> {
  private readonly s;
  constructor(db: Db) {
    this.s = prepareAll(db, GATEWAY_SQL);
  }
  renewLease(gatewayId: string, until: number): void {
    this.s.renewLease.run({ gatewayId, until });
  }
  live(now: number): string[] {
    return (this.s.live.all({ now }) as { gatewayId: string }[]).map((r) => r.gatewayId);
  }
  expire(now: number): number {
    const n = this.s.clearDead.run({ now }).changes;
    this.s.dropDead.run({ now });
    return n;
  }
  nextLinkVersion(): number {
    return (this.s.nextLinkVersion.get() as { value: number }).value;
  }
  connectedIds(now: number): string[] {
    return (this.s.connectedIds.all({ now }) as { id: string }[]).map((r) => r.id);
  }
  lead(): boolean {
    return true;
  }
}

export class SqliteLinkCalls implements Immediate<LinkCallStore> {
  private readonly s;
  constructor(db: Db) {
    this.s = prepareAll(db, LINK_CALL_SQL);
  }
  insert(row: Omit<LinkCallRow, 'answer'>): void {
    this.s.insert.run(row);
  }
  take(gatewayId: string, now: number, limit: number): LinkCallRow[] {
    const rows = this.s.take.all({ gatewayId, now, limit }) as LinkCallRow[];
    return rows.sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1));
  }
  answer(id: string, answer: string): void {
    this.s.answer.run({ id, answer });
  }
  get(id: string): LinkCallRow | undefined {
    return this.s.get.get({ id }) as LinkCallRow | undefined;
  }
  prune(before: number): number {
    return this.s.prune.run({ before }).changes;
  }
}

/** One process: the doorbell is an in-process event, rung after the current call stack. */
export class LocalDoorbell implements Doorbell {
  private readonly bell = new EventEmitter();
  async ring(gatewayId: string, message: string): Promise<void> {
    setImmediate(() => this.bell.emit(gatewayId, message));
  }
  async listen(gatewayId: string, onRing: (message: string) => void): Promise<void> {
    this.bell.on(gatewayId, onRing);
  }
}
