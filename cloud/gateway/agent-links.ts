import type { WebSocket } from 'ws';
import type { DiagnosticsReport } from '../../protocol/messages.js';
import type { RpcSession } from '../../protocol/rpc-session.js';
import type { LinkQuota } from './link-quotas.js';

/** One terminal's open link. */
export interface AgentConnection {
  terminalId: string;
  ws: WebSocket;
  session: RpcSession;
  missedPongs: number;
  helloDone: boolean;
  /** Heartbeats received on this link. */
  heartbeats: number;
  /** The version this link registered with at Hello (presence), undefined before. */
  linkVersion?: number;
  /** Settles when the link's Hello has been handled (undefined before it came). */
  hello: Promise<void> | undefined;
  pushingResults: boolean;
  deliveringActions: boolean;
  /** Asked to deliver while delivering: read the queue again before stopping. */
  actionsAgain: boolean;
  quota: LinkQuota;
  /** When the socket, paused for the read budget, is read again (0: not paused). */
  resumeAt: number;
}

/**
 * The agent links open now, one per terminal: who is connected, and the calls other parts make
 * over a link. Built before everything that asks (the fleet, the REST API), filled by the gateway.
 */
export class AgentLinks {
  private readonly open = new Map<string, AgentConnection>();
  private readonly helloWaiters = new Map<string, Set<(ok: boolean) => void>>();

  /** A link said Hello (its answer has gone out): whoever waits for this terminal is told. */
  markHello(conn: AgentConnection): void {
    if (this.open.get(conn.terminalId) !== conn) return;
    const waiters = this.helloWaiters.get(conn.terminalId);
    this.helloWaiters.delete(conn.terminalId);
    for (const w of waiters ?? []) w(true);
  }

  /** Resolves true once the terminal has a link that said Hello, false after `timeoutMs`. */
  whenHello(terminalId: string, timeoutMs: number): Promise<boolean> {
    if (this.open.get(terminalId)?.helloDone) return Promise.resolve(true);
    if (timeoutMs <= 0) return Promise.resolve(false);
    return new Promise((resolve) => {
      const set = this.helloWaiters.get(terminalId) ?? new Set();
      const done = (ok: boolean) => {
        clearTimeout(timer);
        set.delete(done);
        if (set.size === 0 && this.helloWaiters.get(terminalId) === set) this.helloWaiters.delete(terminalId);
        resolve(ok);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      timer.unref();
      set.add(done);
      this.helloWaiters.set(terminalId, set);
    });
  }

  isConnected(terminalId: string): boolean {
    return this.open.has(terminalId);
  }

  connectedIds(): IterableIterator<string> {
    return this.open.keys();
  }

  get(terminalId: string): AgentConnection | undefined {
    return this.open.get(terminalId);
  }

  all(): IterableIterator<AgentConnection> {
    return this.open.values();
  }

  add(conn: AgentConnection): void {
    this.open.set(conn.terminalId, conn);
  }

  /** Forgets `conn` if it is still the terminal's link (a newer one may have replaced it); true when it was. */
  remove(conn: AgentConnection): boolean {
    if (this.open.get(conn.terminalId) !== conn) return false;
    this.open.delete(conn.terminalId);
    return true;
  }

  /**
   * A live round trip over the link (`Ping`): the link may look up while its agent is gone (a
   * frozen process, a half-open TCP connection). `answered: false` when no answer came in `timeoutMs`.
   */
  async ping(
    terminalId: string,
    timeoutMs: number,
  ): Promise<{ connected: false } | { connected: true; answered: boolean; rttMs: number; error?: string }> {
    const conn = this.open.get(terminalId);
    if (!conn?.helloDone) return { connected: false };
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((r) => {
      timer = setTimeout(() => r('late'), timeoutMs);
    });
    try {
      const answer = await Promise.race([conn.session.call('Ping', {}), late]);
      const rttMs = Math.round((performance.now() - started) * 10) / 10;
      return answer === 'late'
        ? { connected: true, answered: false, rttMs }
        : { connected: true, answered: true, rttMs };
    } catch (err) {
      const rttMs = Math.round((performance.now() - started) * 10) / 10;
      return { connected: true, answered: false, rttMs, error: (err as Error).message };
    } finally {
      clearTimeout(timer);
    }
  }

  /** Asks a connected terminal to renew its certificate now. */
  rotateCertificate(terminalId: string): Promise<{ accepted: true }> {
    const conn = this.open.get(terminalId);
    if (!conn?.helloDone) return Promise.reject(new Error(`terminal ${terminalId} is not connected`));
    return conn.session.call('RotateCertificate', { reason: 'asked by the fleet operator' });
  }

  /** Closes a terminal's link now (a revoked certificate); true when one was open. */
  close(terminalId: string, code: number, reason: string): boolean {
    const conn = this.open.get(terminalId);
    if (!conn) return false;
    conn.ws.close(code, reason);
    // A peer that does not answer the close frame is cut off.
    setTimeout(() => conn.ws.terminate(), 2000).unref();
    return true;
  }

  /** Asks a connected terminal to run its diagnostics; resolves with its report. */
  requestDiagnostics(terminalId: string): Promise<DiagnosticsReport> {
    const conn = this.open.get(terminalId);
    if (!conn?.helloDone) return Promise.reject(new Error(`terminal ${terminalId} is not connected`));
    return conn.session.call('RequestDiagnostics', {});
  }
}
