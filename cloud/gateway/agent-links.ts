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
  pushingResults: boolean;
  deliveringActions: boolean;
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

  /** Asks a connected terminal to run its diagnostics; resolves with its report. */
  requestDiagnostics(terminalId: string): Promise<DiagnosticsReport> {
    const conn = this.open.get(terminalId);
    if (!conn?.helloDone) return Promise.reject(new Error(`terminal ${terminalId} is not connected`));
    return conn.session.call('RequestDiagnostics', {});
  }
}
