import { randomUUID } from 'node:crypto';
import { type IncomingMessage, type Server, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { type WebSocket, WebSocketServer } from 'ws';
import type { ActionProgress, ActionStatus, RunAction } from '../../protocol/actions.js';
import { isoTimeMs } from '../../protocol/formats.js';
import type {
  ConfigApplied,
  Heartbeat,
  Hello,
  RenewedCertificate,
  TerminalProfile,
} from '../../protocol/messages.js';
import { Refusal } from '../../protocol/refusal.js';
import { RpcError, RpcErrorCode } from '../../protocol/rpc-errors.js';
import { RpcSession } from '../../protocol/rpc-session.js';
import { AGENT_PATH, CloseCode, PROTOCOL_VERSION, SUBPROTOCOL } from '../../protocol/version.js';
import { refusalAnswer } from '../api/refusal-status.js';
import type { CloudBus, ConfigPush } from '../cloud-events.js';
import type { CloudMetrics } from '../cloud-metrics.js';
import { type Admission, authenticateTerminal } from '../identity/terminal-auth.js';
import { PoolBusyError } from '../ledger/envelope-pool.js';
import type { TransactionLedger } from '../ledger/transaction-ledger.js';
import type { CloudStore } from '../store/store-types.js';
import type { AgentConnection, AgentLinks } from './agent-links.js';
import { HeartbeatBatch } from './heartbeat-batch.js';
import { LinkAdmission } from './link-admission.js';
import { LinkQuota, type LinkQuotaLimits } from './link-quotas.js';

/**
 * The WSS gateway at /v1/agent. A terminal is admitted only with a client certificate that
 * chains to the fleet CA *and* is the current certificate of an active terminal in the table.
 * Refusals are HTTP answers with `{error: {code, message}}` so the agent can say why.
 */
export interface GatewayOptions {
  store: CloudStore;
  /** This process among the gateways: a link's presence names it (cloud/gateway/link-router.ts). */
  gatewayId: string;
  /** The fleet CA certificate (PEM) client certificates must be issued by. */
  caPem: string;
  now(): number;
  heartbeatIntervalSec: number;
  pingIntervalSec: number;
  metrics?: CloudMetrics;
  /** How often the gateway writes its batch of heartbeats (default 1 s). */
  heartbeatFlushMs?: number;
  callTimeoutMs?: number;
  /** New links admitted per second (0: no limit); beyond it, `503 cloud_busy`. */
  maxNewLinksPerSec: number;
  /** What one link may ask (cloud/link-quotas.ts). */
  quotas: LinkQuotaLimits;
  /** A link that has not said Hello this long after the upgrade is closed (1008). */
  helloTimeoutMs: number;
  /** The links open now (shared with whoever asks who is connected). */
  links: AgentLinks;
  /** Says when a terminal's link came up (after Hello) or went down. */
  events: CloudBus;
  fleet: {
    /** The config a terminal should run, to push after Hello when it runs another. */
    desiredConfig(terminalId: string): Promise<{ version: number; config: Record<string, unknown> } | null>;
    recordConfigAck(terminalId: string, ack: ConfigApplied): Promise<void>;
    /** Who the terminal is in the fleet (name, store): in the Hello answer and pushed on a change. */
    terminalProfile(terminalId: string): Promise<TerminalProfile | null>;
  };
  enrollment: { renewCertificate(terminalId: string, csr: string): Promise<RenewedCertificate> };
  transactions: Pick<TransactionLedger, 'forward' | 'pendingResults' | 'markDelivered'>;
  actions: {
    pending(terminalId: string): Promise<RunAction[]>;
    delivered(terminalId: string, actionId: string, p: ActionProgress): Promise<void>;
    statusReported(terminalId: string, s: ActionStatus): Promise<void>;
  };
  log: {
    info(obj: object, msg: string): void;
    warn(obj: object, msg: string): void;
  };
}

/** The refusals of a known terminal's link that put it in `error`, and the reason shown. */
const PROBLEM_OF_REFUSAL: Readonly<Record<string, string>> = {
  certificate_expired: 'certificate_expired',
  certificate_not_yet_valid: 'certificate_not_yet_valid',
  certificate_superseded: 'certificate_superseded',
  certificate_revoked: 'certificate_revoked',
};

const CLEAN_CLOSE_CODES = new Set<number>([CloseCode.normal, 1001, CloseCode.agentShutdown]);
const MAX_FRAME_BYTES = 1024 * 1024;

export class AgentGateway {
  private readonly wss = new WebSocketServer({
    noServer: true,
    maxPayload: MAX_FRAME_BYTES,
    handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
  });
  private pingTimer: NodeJS.Timeout | undefined;
  private readonly admission: LinkAdmission;
  private readonly beats: HeartbeatBatch;

  constructor(private readonly o: GatewayOptions) {
    this.admission = new LinkAdmission(o.maxNewLinksPerSec, o.now());
    // Counters without labels are exported from the start, at 0 (Prometheus's rate() needs the first sample).
    for (const name of [
      'posagent_link_opens_total',
      'posagent_heartbeat_batches_total',
      'posagent_heartbeats_written_total',
    ])
      o.metrics?.count(name, undefined, 0);
    this.beats = new HeartbeatBatch({
      write: (beats) => {
        o.metrics?.count('posagent_heartbeat_batches_total');
        o.metrics?.count('posagent_heartbeats_written_total', undefined, beats.length);
        return o.store.terminals.recordHeartbeats(beats);
      },
      // A clock that drifted (or was corrected) changes the status at the flush, not at the next sweep.
      flushed: async (ids) => {
        await o.events.emit('terminals.beat', { terminalIds: ids });
      },
      flushMs: o.heartbeatFlushMs ?? 1000,
      log: o.log,
    });
  }

  attach(server: Server): void {
    server.on('upgrade', (req, socket, head) => {
      this.onUpgrade(req, socket, head).catch((err: Error) => {
        this.o.log.warn({ err: err.message }, 'agent link upgrade failed');
        socket.destroy();
      });
    });
    this.pingTimer = setInterval(() => this.pingAll(), this.o.pingIntervalSec * 1000);
    this.pingTimer.unref();
    this.beats.start();
  }

  /** Closes every link with a close frame (e.g. 1012 on restart, so agents spread their retries). */
  async closeAll(code: number, reason: string): Promise<void> {
    clearInterval(this.pingTimer);
    for (const c of this.o.links.all()) c.ws.close(code, reason);
    await this.beats.stop();
  }

  /** A refused upgrade is an HTTP answer: status from the one table, the one error body. */
  private refuse(socket: Duplex, refusal: Refusal): void {
    this.o.metrics?.count('posagent_link_refusals_total', ['reason', refusal.code]);
    const { status, body, headers } = refusalAnswer(refusal);
    const text = JSON.stringify(body);
    const extra = Object.entries(headers)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('');
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Bad Request'}\r\nConnection: close\r\nContent-Type: application/json\r\n${extra}Content-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`,
    );
    this.o.log.warn({ status, code: refusal.code }, `agent link refused: ${refusal.message}`);
  }

  private async onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    // Who it is first (the certificate was verified at the handshake; this is a table lookup),
    // then admission: a flood of upgrades without a terminal's certificate takes no admission
    // token from the terminals that have one.
    const verdict = await this.admit(req, socket as TLSSocket);
    if ('refused' in verdict) {
      await this.recordRefusal(verdict);
      this.refuse(socket, verdict.refused);
      return;
    }
    if (!this.admission.admit(this.o.now())) {
      this.refuse(
        socket,
        new Refusal('cloud_busy', 'too many terminals are connecting at once; retry after a backoff', {
          retryAfterSec: 1,
        }),
      );
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws, verdict.terminalId));
  }

  /**
   * A known terminal's link refused for its certificate is what support sees as `error` with the
   * reason (PeakPOS: "Error: certificate, time sync, or auth failure"). Not while the terminal is
   * connected with its current certificate: an old device still trying a superseded one does not
   * make the one that works an error.
   */
  private async recordRefusal(v: { refused: Refusal; terminalId?: string }): Promise<void> {
    const reason = PROBLEM_OF_REFUSAL[v.refused.code];
    if (!reason || v.terminalId === undefined || this.o.links.get(v.terminalId)) return;
    await this.recordProblem(v.terminalId, reason);
  }

  private async recordProblem(terminalId: string, reason: string): Promise<void> {
    const row = await this.o.store.terminals.get(terminalId);
    if (!row || row.deactivatedAt !== null || row.problem === reason) return;
    await this.o.store.terminals.setProblem(terminalId, reason, this.o.now());
    await this.o.events.emit('terminal.status', { terminalId });
  }

  /** Who may open the link: the right path and subprotocol, then a current certificate of an active terminal. */
  private async admit(req: IncomingMessage, tls: TLSSocket): Promise<Admission> {
    const path = (req.url ?? '').split('?')[0];
    if (path !== AGENT_PATH) return { refused: new Refusal('not_found', `no WebSocket endpoint at ${path}`) };
    const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((s) => s.trim());
    if (!offered.includes(SUBPROTOCOL))
      return { refused: new Refusal('subprotocol_required', `subprotocol ${SUBPROTOCOL} is required`) };
    return await authenticateTerminal(tls, { store: this.o.store, caPem: this.o.caPem, now: this.o.now });
  }

  private onConnection(ws: WebSocket, terminalId: string): void {
    // A call that came after Hello on this link waits for Hello to be done (the handlers are
    // async: without this a Heartbeat could be handled while its link's Hello is still writing).
    const afterHello =
      <P, R>(fn: (p: P) => Promise<R>) =>
      async (p: P): Promise<R> => {
        await conn.hello;
        if (!conn.helloDone)
          throw new RpcError(RpcErrorCode.ProtocolError, 'Hello must be the first call on a link');
        return fn(p);
      };
    const previous = this.o.links.get(terminalId);
    if (previous) previous.ws.close(4001, 'replaced by a newer connection');
    const conn: AgentConnection = {
      terminalId,
      ws,
      missedPongs: 0,
      helloDone: false,
      hello: undefined,
      heartbeats: 0,
      pushingResults: false,
      deliveringActions: false,
      actionsAgain: false,
      quota: new LinkQuota(this.o.quotas, this.o.now()),
      resumeAt: 0,
      session: new RpcSession({
        answers: 'agentToCloud',
        send: (text) => ws.send(text),
        newId: () => randomUUID(),
        callTimeoutMs: this.o.callTimeoutMs ?? 30_000,
        handlers: {
          Hello: (p) => {
            const hello = this.onHello(conn, p);
            conn.hello = hello.then(
              () => undefined,
              () => undefined,
            );
            return hello;
          },
          // Every other call needs Hello first: one guard, so no handler can forget it.
          Heartbeat: afterHello(async (p) => await this.onHeartbeat(conn, p)),
          ConfigApplied: afterHello(async (p) => {
            await this.o.fleet.recordConfigAck(conn.terminalId, p);
            return {};
          }),
          RenewCertificate: afterHello(async (p) => {
            try {
              return await this.o.enrollment.renewCertificate(conn.terminalId, p.csr);
            } catch (err) {
              // A renewal the cloud refuses is the agent telling it renewal fails: support sees
              // error/renewal_failing until a link is accepted again (after a renewal that works).
              await this.recordProblem(conn.terminalId, 'renewal_failing');
              throw new RpcError(RpcErrorCode.PropertyConstraintViolation, (err as Error).message);
            }
          }),
          ActionStatus: afterHello(async (p) => {
            await this.o.actions.statusReported(conn.terminalId, p);
            return {};
          }),
          TransactionsForward: afterHello(async (p) => {
            let answer: Awaited<ReturnType<GatewayOptions['transactions']['forward']>>;
            try {
              answer = await this.o.transactions.forward(conn.terminalId, p);
            } catch (err) {
              if (!(err instanceof PoolBusyError)) throw err;
              throw new RpcError(
                RpcErrorCode.GenericError,
                `the cloud is busy: ${err.message}; retry later`,
                {
                  quota: 'cloud_busy',
                },
              );
            }
            setImmediate(() => void this.pushResults(conn));
            return answer;
          }),
        },
        gate: (action, payload) => {
          const verdict = conn.quota.enter(action, payload, this.o.now());
          if ('refused' in verdict && (conn.quota.refusals === 1 || conn.quota.refusals % 100 === 0))
            this.o.log.warn(
              { terminalId, action, refusals: conn.quota.refusals, ...verdict.refused.details },
              `link quota: ${verdict.refused.message}`,
            );
          return verdict;
        },
        onProtocolError: (err, ctx) => {
          // Quota refusals are logged by the gate, a line per 100: a flood must not flood the log.
          if ('quota' in err.details) return;
          this.o.log.warn({ terminalId, code: err.code, ...ctx }, `protocol error: ${err.message}`);
        },
      }),
    };
    this.o.links.add(conn);
    this.o.metrics?.count('posagent_link_opens_total');
    this.o.log.info({ terminalId }, 'agent connected');
    ws.on('message', (data, isBinary) => {
      this.readBudget(conn, (data as Buffer).length);
      if (isBinary) conn.session.receiveBinary();
      else conn.session.receive(data.toString());
    });
    const helloTimer = setTimeout(() => {
      if (!conn.helloDone && this.o.links.get(terminalId) === conn) {
        this.o.log.warn({ terminalId }, 'agent link sent no Hello in time; closing it');
        ws.close(CloseCode.policyViolation, 'Hello expected first');
      }
    }, this.o.helloTimeoutMs);
    helloTimer.unref();
    ws.on('pong', () => {
      conn.missedPongs = 0;
    });
    ws.on('close', (code, reason) => {
      clearTimeout(helloTimer);
      conn.session.close(`closed ${code}`);
      this.o.log.info({ terminalId, code, reason: reason.toString() }, 'agent disconnected');
      if (!this.o.links.remove(conn)) return;
      void (async () => {
        // Only this link's own presence is cleared: a newer link (here or on another gateway)
        // registered since keeps the terminal connected.
        // Its last heartbeat is written first: the disconnect is what the row says last.
        await this.beats.flush();
        const released =
          conn.linkVersion === undefined ||
          (await this.o.store.terminals.releaseLink(terminalId, conn.linkVersion));
        if (!released) return;
        await this.o.store.terminals.recordDisconnect(terminalId, CLEAN_CLOSE_CODES.has(code));
        await this.o.events.emit('terminal.link', { terminalId });
      })().catch((err: Error) =>
        this.o.log.warn({ terminalId, err: err.message }, 'disconnect not recorded'),
      );
    });
    ws.on('error', (err) => this.o.log.warn({ terminalId, err: err.message }, 'agent socket error'));
  }

  /**
   * Past the link's read budget the socket is not read until the budget refills: TCP pushes back
   * on the sender, and the cloud never parses faster than the budget.
   */
  private readBudget(conn: AgentConnection, size: number): void {
    const waitMs = conn.quota.read(size, this.o.now());
    if (waitMs <= 0) return;
    const at = this.o.now() + waitMs;
    if (conn.resumeAt >= at) return;
    const first = conn.resumeAt === 0;
    conn.resumeAt = at;
    if (first) conn.ws.pause();
    const resume = () => {
      const left = conn.resumeAt - this.o.now();
      if (left > 0) {
        setTimeout(resume, left).unref();
        return;
      }
      conn.resumeAt = 0;
      conn.ws.resume();
    };
    if (first) setTimeout(resume, waitMs).unref();
  }

  private async onHello(conn: AgentConnection, p: Hello) {
    if (p.terminalId !== conn.terminalId) {
      setImmediate(() => conn.ws.close(CloseCode.refused, 'terminal id does not match certificate'));
      throw new RpcError(
        RpcErrorCode.SecurityError,
        `Hello names ${p.terminalId} but the certificate is ${conn.terminalId}`,
      );
    }
    if (p.protocolVersion !== PROTOCOL_VERSION) {
      // Another protocol version: refused with what this cloud speaks; the link closes (4002).
      setImmediate(() => conn.ws.close(CloseCode.unsupportedProtocol, 'protocol version not supported'));
      throw new RpcError(
        RpcErrorCode.NotSupported,
        `protocol version ${p.protocolVersion} is not supported by this cloud; it speaks ${PROTOCOL_VERSION}`,
        { supportedVersions: [PROTOCOL_VERSION] },
      );
    }
    conn.helloDone = true;
    const known = await this.o.store.terminals.get(conn.terminalId);
    if (p.serialNumber && known?.serialNumber && known.serialNumber !== p.serialNumber)
      this.o.log.warn(
        { terminalId: conn.terminalId, serialNumber: known.serialNumber, reported: p.serialNumber },
        'terminal reports another serial number than the one it enrolled with; kept the enrolled one',
      );
    // A serial only said in Hello is taken (when none was known) unless another holds it.
    const serialNumber =
      p.serialNumber &&
      !known?.serialNumber &&
      !(await this.o.store.terminals.serialInUse(p.serialNumber, conn.terminalId))
        ? p.serialNumber
        : undefined;
    const now = this.o.now();
    await this.o.store.transaction(async () => {
      await this.o.store.terminals.recordHello(conn.terminalId, now, {
        bootId: p.bootId,
        softwareVersion: p.softwareVersion,
        model: p.model ?? null,
        serialNumber: serialNumber ?? null,
      });
      // An accepted link ends what refused the last ones; the device clock is compared with ours.
      if (known?.problem) await this.o.store.terminals.setProblem(conn.terminalId, null, null);
      const clock = isoTimeMs(p.clock);
      if (clock !== null) await this.o.store.terminals.recordClockSkew(conn.terminalId, clock - now);
    });
    // Presence: this link, with a version newer than any before it, is the terminal's link now.
    const version = await this.o.store.gateways.nextLinkVersion();
    await this.o.store.terminals.registerLink(conn.terminalId, this.o.gatewayId, version);
    conn.linkVersion = version;
    // After the Hello answer has gone out (setImmediate runs after it is sent): a terminal that
    // runs another version than the desired one gets the desired one.
    // Everything read first: the answer is sent in the microtasks after this returns, before the
    // immediates below run (no store call comes between).
    const desired = await this.o.fleet.desiredConfig(conn.terminalId);
    const profile = await this.o.fleet.terminalProfile(conn.terminalId);
    if (desired && desired.version !== p.configVersion)
      setImmediate(() => this.pushConfig({ terminalId: conn.terminalId, ...desired }));
    setImmediate(() => void this.pushResults(conn));
    setImmediate(() => void this.deliverActions(conn.terminalId));
    setImmediate(() => {
      this.o.events
        .emit('terminal.link', { terminalId: conn.terminalId })
        .catch((err: Error) =>
          this.o.log.warn({ terminalId: conn.terminalId, err: err.message }, 'link event failed'),
        )
        .finally(() => this.o.links.markHello(conn));
    });
    return {
      serverTime: new Date(this.o.now()).toISOString(),
      heartbeatIntervalSec: this.o.heartbeatIntervalSec,
      pingIntervalSec: this.o.pingIntervalSec,
      ...(profile ? { terminal: profile } : {}),
    };
  }

  /** Tells a connected terminal its new name or store (a rename, a move); it learns it at its next Hello otherwise. */
  async pushProfile(terminalId: string): Promise<void> {
    const conn = this.o.links.get(terminalId);
    const profile = await this.o.fleet.terminalProfile(terminalId);
    if (!conn?.helloDone || !profile) return;
    conn.session.call('TerminalUpdated', profile).catch((err: Error & { code?: string }) => {
      this.o.log.warn({ terminalId, code: err.code }, `terminal profile not received: ${err.message}`);
    });
  }

  /** A heartbeat joins the gateway's batch (heartbeat-batch.ts); the status is checked once it is written. */
  private async onHeartbeat(conn: AgentConnection, p: Heartbeat) {
    const now = this.o.now();
    const health = { ...p, receivedAt: new Date(now).toISOString() };
    this.beats.add({
      id: conn.terminalId,
      at: now,
      batteryLevel: p.battery?.level ?? null,
      health: JSON.stringify(health),
      clockSkewMs: (isoTimeMs(p.sentAt) ?? now) - now,
    });
    // A link's first beat is written at once (what support sees right after a connect); the
    // steady beats of a connected fleet wait for the batch.
    if (conn.heartbeats++ === 0) await this.beats.flush();
    return { serverTime: new Date(now).toISOString() };
  }

  /**
   * Tells a connected terminal it was deactivated, then closes its link (4003); its certificate is
   * refused from now on. Called inside the deactivating transaction: the link is told after it.
   */
  deactivate(terminalId: string, reason: string): void {
    setImmediate(() => this.tellDeactivated(terminalId, reason));
  }

  private tellDeactivated(terminalId: string, reason: string): void {
    const conn = this.o.links.get(terminalId);
    if (!conn) return;
    const close = () => conn.ws.close(CloseCode.refused, 'terminal deactivated');
    conn.session.call('Deactivate', { reason, at: new Date(this.o.now()).toISOString() }).then(close, close);
    setTimeout(close, 2000).unref();
  }

  /** Sends a connected terminal the config it should run now (a call routed here from another gateway). */
  async pushDesiredConfig(terminalId: string): Promise<void> {
    if (!this.o.links.get(terminalId)?.helloDone) return;
    const desired = await this.o.fleet.desiredConfig(terminalId);
    if (desired) this.pushConfig({ terminalId, ...desired });
  }

  /** Sends a terminal the desired config it is handed, if it is connected and has said Hello. */
  pushConfig(push: ConfigPush): void {
    const { terminalId, ...desired } = push;
    const conn = this.o.links.get(terminalId);
    if (!conn?.helloDone) return;
    conn.session.call('ApplyConfig', desired).catch((err: Error & { code?: string }) => {
      this.o.log.warn(
        { terminalId, version: desired.version, code: err.code },
        `config push not received: ${err.message}`,
      );
    });
  }

  /**
   * Sends a connected terminal its queued actions, oldest first, one at a time; an action stays
   * `queued` (and is sent again after the next Hello) until the terminal has answered it.
   */
  async deliverActions(terminalId: string): Promise<void> {
    const conn = this.o.links.get(terminalId);
    if (!conn?.helloDone) return;
    // Asked while delivering: the loop reads the queue once more before it stops (the action
    // that asked may have been queued after its last read).
    if (conn.deliveringActions) {
      conn.actionsAgain = true;
      return;
    }
    conn.deliveringActions = true;
    try {
      for (;;) {
        conn.actionsAgain = false;
        const [next] = await this.o.actions.pending(terminalId);
        if (this.o.links.get(terminalId) !== conn) return;
        if (!next) {
          if (conn.actionsAgain) continue;
          return;
        }
        const progress = await conn.session.call('RunAction', next);
        await this.o.actions.delivered(terminalId, next.actionId, progress);
      }
    } catch (err) {
      this.o.log.warn(
        { terminalId, err: (err as Error).message },
        'action not delivered; sent again on the next link',
      );
    } finally {
      conn.deliveringActions = false;
    }
  }

  /**
   * Sends decided transactions the terminal has not been told about, oldest first, one batch in
   * flight per link; marked delivered only when the terminal answered.
   */
  private async pushResults(conn: AgentConnection): Promise<void> {
    if (conn.pushingResults) return;
    conn.pushingResults = true;
    try {
      for (;;) {
        const results = await this.o.transactions.pendingResults(conn.terminalId);
        if (results.length === 0 || this.o.links.get(conn.terminalId) !== conn) return;
        await conn.session.call('TransactionResult', { results });
        await this.o.transactions.markDelivered(
          conn.terminalId,
          results.map((r) => r.id),
        );
      }
    } catch (err) {
      this.o.log.warn(
        { terminalId: conn.terminalId, err: (err as Error).message },
        'transaction results not delivered; retried on the next link',
      );
    } finally {
      conn.pushingResults = false;
    }
  }

  /** One sweep for all links: a link that missed two pongs in a row is dead and is terminated. */
  private pingAll(): void {
    for (const c of this.o.links.all()) {
      if (c.missedPongs >= 2) {
        this.o.log.warn({ terminalId: c.terminalId }, 'agent stopped answering pings; dropping link');
        c.ws.terminate();
        continue;
      }
      c.missedPongs++;
      c.ws.ping();
    }
  }
}
