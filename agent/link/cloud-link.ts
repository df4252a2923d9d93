import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { createSecureContext, type SecureContext } from 'node:tls';
import { type ClientOptions, WebSocket } from 'ws';
import { explainWithClock } from '../../cloud-access/cloud-time.js';
import { connectionPath } from '../../cloud-access/connection-path.js';
import type { ProxySettings } from '../../cloud-access/proxy.js';
import { resumingTlsConnect, TlsSessions } from '../../cloud-access/tls-sessions.js';
import type { Hello, HelloAck } from '../../protocol/messages.js';
import { parseErrorBody } from '../../protocol/refusal.js';
import { RpcError, RpcErrorCode } from '../../protocol/rpc-errors.js';
import { type Handlers, RpcSession } from '../../protocol/rpc-session.js';
import { AGENT_PATH, CloseCode, SUBPROTOCOL } from '../../protocol/version.js';
import { sleepUnless } from '../interruptible-sleep.js';
import { type BackoffPolicy, retryAfterLink, stableLink } from './backoff.js';
import type { CloudAddresses } from './cloud-addresses.js';
import { type LinkEvent, type LinkSnapshot, type LinkState, nextLinkState } from './link-state.js';

/**
 * The one WebSocket link to the cloud: TLS with the client certificate, the cloud verified
 * against the pinned fleet CA only, subprotocol posagent.v1, Hello first, ping/pong liveness,
 * and reconnects forever with full-jitter backoff.
 */
export interface OnlineLink {
  session: RpcSession;
  ack: HelloAck;
  /** Aborted when this link ends. */
  signal: AbortSignal;
  /** Round trip of the last ping, ms. */
  rttMs(): number | null;
}

export interface CloudLinkOptions {
  /** Where to connect: the address in use, and the next one after a failed or lost link. */
  cloud: CloudAddresses;
  /** Read at every connection attempt, so a renewed certificate is used from the next link on. */
  tls(): { ca: string; cert: string; key: string };
  proxy?: ProxySettings;
  policy: BackoffPolicy;
  connectTimeoutMs: number;
  callTimeoutMs: number;
  defaultPingIntervalSec: number;
  handlers: Handlers;
  hello(): Hello;
  onOnline(link: OnlineLink): void;
  onStateChange(snapshot: LinkSnapshot): void;
  /** The cloud refused the link because this terminal is deactivated (`403 terminal_deactivated`). */
  onDeactivated?(reason: string): void;
  /** The ping interval pushed in the config (agent.pingIntervalSec), read live; null: the Hello answer's. */
  pushedPingIntervalSec?(): number | null;
  now(): number;
  random(): number;
  log: {
    info(obj: object, msg: string): void;
    warn(obj: object, msg: string): void;
    error(obj: object, msg: string): void;
  };
}

interface Outcome {
  event: Extract<LinkEvent, 'lost' | 'refused'>;
  reason: string;
  upForMs: number | null;
  cloudRestarted: boolean;
  /** The cloud's refusal code (`error.code` of an HTTP answer to the upgrade), when it gave one. */
  code?: string;
}

const MAX_FRAME_BYTES = 1024 * 1024;

export function agentLinkUrl(cloudUrl: string): string {
  const u = new URL(AGENT_PATH, cloudUrl);
  u.protocol = u.protocol === 'http:' ? 'ws:' : 'wss:';
  return u.toString();
}

export class CloudLink {
  private snap: LinkSnapshot;
  private retry = new AbortController();

  constructor(
    private readonly o: CloudLinkOptions,
    initial: { lastHeartbeatAt: string | null },
  ) {
    this.snap = {
      state: 'offline',
      since: new Date(o.now()).toISOString(),
      reason: null,
      lastHeartbeatAt: initial.lastHeartbeatAt,
    };
  }

  snapshot(): LinkSnapshot {
    return { ...this.snap };
  }

  /** Skips the current backoff wait (a technician's `posagent queue flush`). */
  retryNow(): void {
    this.retry.abort();
  }

  private dropCurrent: ((reason: string) => void) | null = null;
  /** The current link's TLS handshake: resumed or full, and the protocol version (logged with "link online"). */
  private lastTls: { handshake: 'resumed' | 'full'; tlsVersion: string | null } | null = null;

  /** Closes the current link on purpose and connects again at once (a renewed certificate). */
  reconnect(reason: string): void {
    this.dropCurrent?.(reason);
    this.retryNow();
  }

  /** The liveness of the link that is up (null while none is). */
  private livenessNow: Liveness | null = null;

  /** A pushed `agent.pingIntervalSec` changed: the link that is up pings (and gives up) by it from now on. */
  pingIntervalChanged(): void {
    this.livenessNow?.intervalChanged();
  }

  noteHeartbeat(at: string): void {
    this.snap = { ...this.snap, lastHeartbeatAt: at };
  }

  private halted: string | null = null;

  /**
   * Ends the link for good (the cloud deactivated this terminal): the current link is closed, no
   * retry follows, and the state stays `error` with `reason`. Before `run`, `run` returns at once.
   */
  halt(reason: string): void {
    if (this.halted !== null) return;
    this.halted = reason;
    this.dropCurrent?.(reason);
    this.retryNow();
  }

  /** Runs until `signal` aborts (then closes the link with a close frame) or `halt`. Never throws. */
  async run(signal: AbortSignal): Promise<void> {
    let failed = 0;
    // The outage the retry windows are bounded by: from the first attempt, and from the end of each stable link.
    let downSince = this.o.now();
    while (!signal.aborted && this.halted === null) {
      this.move('connect', this.snap.reason);
      const cloudUrl = this.o.cloud.current();
      const outcome = await this.connectOnce(signal, cloudUrl);
      if (signal.aborted) break;
      if (outcome.code === 'terminal_deactivated') this.o.onDeactivated?.(outcome.reason);
      if (this.halted !== null) break;
      this.move(outcome.event, outcome.reason);
      // Another gateway, if there are several: the next attempt (after the backoff) goes there.
      this.o.cloud.failed(cloudUrl);
      if (stableLink(outcome, this.o.policy)) downSince = this.o.now();
      const retry = retryAfterLink(
        failed,
        { ...outcome, downForMs: this.o.now() - downSince },
        this.o.policy,
        this.o.random,
      );
      failed = retry.failed;
      this.o.log.info(
        {
          delayMs: retry.delayMs,
          attempt: retry.attempt,
          upForMs: outcome.upForMs,
          downForMs: this.o.now() - downSince,
          reason: outcome.reason,
          ...(this.o.cloud.all().length > 1 ? { from: cloudUrl, next: this.o.cloud.current() } : {}),
        },
        'link down; reconnecting after backoff',
      );
      await sleepUnless(retry.delayMs, signal, this.retry.signal);
      if (signal.aborted) break;
      this.retry = new AbortController();
    }
    if (this.halted !== null) this.move('deactivated', this.halted);
    else this.move('stop', 'agent stopped');
  }

  private move(event: LinkEvent, reason: string | null): void {
    const state: LinkState = nextLinkState(this.snap.state, event);
    if (state === this.snap.state && reason === this.snap.reason) return;
    this.snap = {
      ...this.snap,
      state,
      since: state === this.snap.state ? this.snap.since : new Date(this.o.now()).toISOString(),
      reason: state === 'online' ? null : reason,
    };
    if (state === 'online' || state === 'error' || event === 'lost') {
      this.o.log[state === 'error' ? 'warn' : 'info'](
        { state, reason: this.snap.reason, ...(state === 'online' && this.lastTls ? this.lastTls : {}) },
        `link ${state}`,
      );
    }
    try {
      this.o.onStateChange(this.snapshot());
    } catch (err) {
      this.o.log.error({ err }, 'recording the link state failed; the link goes on');
    }
  }

  private connectOnce(signal: AbortSignal, cloudUrl: string): Promise<Outcome> {
    return new Promise<Outcome>((resolve) => {
      let openedAt: number | null = null;
      let settled = false;
      let session: RpcSession | undefined;
      let pingTimer: Liveness | undefined;
      const linkAbort = new AbortController();
      const tls = this.o.tls();
      const url = agentLinkUrl(cloudUrl);
      const path = connectionPath(url, this.o.proxy);
      // The session of the last link (with this certificate) is offered: a reconnect resumes it.
      this.lastTls = null;
      const connectTls = resumingTlsConnect(TlsSessions.keyOf(path.host, path.port, tls.cert), (s) => {
        this.lastTls = { handshake: s.isSessionReused() ? 'resumed' : 'full', tlsVersion: s.getProtocol() };
      });
      const tunnel = path.agent(connectTls);
      // ws hands its options to tls.connect, secureContext included (its types do not list it).
      const options: ClientOptions & { secureContext: SecureContext } = {
        ...tls,
        secureContext: this.secureContextFor(tls),
        handshakeTimeout: this.o.connectTimeoutMs,
        maxPayload: MAX_FRAME_BYTES,
        // The same path (direct, or the proxy's tunnel) as diagnostics and the HTTPS calls take.
        ...(tunnel
          ? { agent: tunnel }
          : { createConnection: connectTls as unknown as ClientOptions['createConnection'] }),
      };
      const ws = new WebSocket(url, SUBPROTOCOL, options);
      const onAbort = () => ws.close(CloseCode.agentShutdown, 'agent shutting down');
      signal.addEventListener('abort', onAbort, { once: true });
      const finish = (o: Omit<Outcome, 'upForMs'>) => {
        if (settled) return;
        settled = true;
        this.dropCurrent = null;
        this.livenessNow = null;
        pingTimer?.stop();
        signal.removeEventListener('abort', onAbort);
        linkAbort.abort();
        session?.close(o.reason);
        resolve({ ...o, upForMs: openedAt === null ? null : this.o.now() - openedAt });
      };

      ws.on('unexpected-response', (_req, res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          // Not our cloud's error body (a proxy's page): keep the status line.
          const e = parseErrorBody(Buffer.concat(chunks));
          const message = e ? `${e.message} (${e.code})` : `HTTP ${res.statusCode}`;
          const code = e?.code;
          const status = res.statusCode ?? 0;
          finish({
            event: status >= 400 && status < 500 ? 'refused' : 'lost',
            reason: `cloud refused the link: ${message}`,
            cloudRestarted: false,
            ...(code ? { code } : {}),
          });
          ws.terminate();
        });
      });
      this.dropCurrent = (reason) => {
        finish({ event: 'lost', reason, cloudRestarted: true });
        ws.close(CloseCode.normal, reason);
      };
      // An error is explained asynchronously (the cloud's clock is asked for clock-shaped
      // failures); the close that follows it must not report first.
      let explaining = false;
      ws.on('error', (err) => {
        explaining = true;
        ws.terminate();
        void explainWithClock(err, cloudUrl, this.o.now(), this.o.proxy).then((e) =>
          finish({ event: e.permanent ? 'refused' : 'lost', reason: e.message, cloudRestarted: false }),
        );
      });
      ws.on('close', (code, buf) => {
        if (explaining) return;
        const why = buf.toString();
        finish({
          event: code === CloseCode.refused ? 'refused' : 'lost',
          reason: `cloud closed the link (${code}${why ? `: ${why}` : ''})`,
          cloudRestarted: code === CloseCode.serviceRestart || code === 1001,
        });
      });
      ws.on('open', () => {
        openedAt = this.o.now();
        const s = new RpcSession({
          answers: 'cloudToAgent',
          handlers: this.o.handlers,
          send: (text) => ws.send(text),
          newId: () => randomUUID(),
          callTimeoutMs: this.o.callTimeoutMs,
          onProtocolError: (err, ctx) =>
            this.o.log.warn({ code: err.code, ...ctx }, `protocol error: ${err.message}`),
        });
        session = s;
        ws.on('message', (data, isBinary) => (isBinary ? s.receiveBinary() : s.receive(data.toString())));
        void this.handshake(ws, s, linkAbort.signal, finish).then((ok) => {
          if (!ok) return;
          if (settled) return;
          pingTimer = this.startLiveness(ws, (reason) =>
            finish({ event: 'lost', reason, cloudRestarted: false }),
          );
          this.livenessNow = pingTimer;
        });
      });
    });
  }

  private rtt: number | null = null;

  /** The TLS context of the last attempt's credentials: parsing the key, certificate and CA again for every attempt cost ~1.5 ms each. */
  private context: { ca: string; cert: string; key: string; secureContext: SecureContext } | null = null;

  /**
   * Builds the TLS context of the current credentials now rather than at the first attempt. A
   * device does that on its own CPU either way; the fleet simulator, which runs thousands of links
   * on a few threads, calls it before its measured connect so the phase times the cloud, not the
   * parsing of thousands of keys and certificates.
   */
  prepareTls(): void {
    this.secureContextFor(this.o.tls());
  }

  private secureContextFor(t: { ca: string; cert: string; key: string }): SecureContext {
    const c = this.context;
    if (c && c.ca === t.ca && c.cert === t.cert && c.key === t.key) return c.secureContext;
    const secureContext = createSecureContext(t);
    this.context = { ...t, secureContext };
    return secureContext;
  }

  private async handshake(
    ws: WebSocket,
    session: RpcSession,
    linkSignal: AbortSignal,
    finish: (o: Omit<Outcome, 'upForMs'>) => void,
  ): Promise<boolean> {
    let ack: HelloAck;
    try {
      ack = await session.call('Hello', this.o.hello());
    } catch (err) {
      const e = err instanceof RpcError ? err : new RpcError(RpcErrorCode.InternalError, String(err));
      if (e.code === RpcErrorCode.Disconnected) return false;
      finish({
        // SecurityError: an identity mismatch; NotSupported: a protocol version the cloud does not speak.
        event:
          e.code === RpcErrorCode.SecurityError || e.code === RpcErrorCode.NotSupported ? 'refused' : 'lost',
        reason: `Hello failed: ${e.message} (${e.code})`,
        cloudRestarted: false,
      });
      ws.close(CloseCode.normal, 'Hello failed');
      return false;
    }
    if (linkSignal.aborted) return false;
    this.pingIntervalMs = ack.pingIntervalSec * 1000;
    this.move('helloAcked', null);
    try {
      this.o.onOnline({ session, ack, signal: linkSignal, rttMs: () => this.rtt });
    } catch (err) {
      this.o.log.error({ err }, 'starting the work of an online link failed');
    }
    return true;
  }

  private pingIntervalMs = 0;

  /** The ping interval in force: the pushed config's (live), else the Hello answer's, else the device default. */
  private pingIntervalNowMs(): number {
    const pushed = this.o.pushedPingIntervalSec?.() ?? null;
    if (pushed !== null) return pushed * 1000;
    return this.pingIntervalMs || this.o.defaultPingIntervalSec * 1000;
  }

  /**
   * Liveness within 2× the ping interval P: a ping every P/2, and the link is dead once no pong
   * has come for 1.5·P — the last pings (at least two) unanswered. One timer, armed for the next
   * thing due (the next ping, or the moment the link would be dead), so an idle link wakes only
   * to ping; a half-open link is given up 1.5·P after it went silent. A pushed
   * `agent.pingIntervalSec` re-arms it (`pingIntervalChanged`), so it applies to the link that is up, at once.
   */
  private startLiveness(ws: WebSocket, onDead: (reason: string) => void): Liveness {
    let lastPongAt = this.o.now();
    let lastPingAt = Number.NEGATIVE_INFINITY;
    let timer: NodeJS.Timeout | undefined;
    let stopped = false;
    ws.on('pong', () => {
      lastPongAt = this.o.now();
      this.rtt = lastPongAt - lastPingAt;
    });
    const arm = () => {
      clearTimeout(timer);
      if (stopped) return;
      const interval = this.pingIntervalNowMs();
      const due = Math.min(lastPingAt + interval / 2, lastPongAt + 1.5 * interval);
      timer = setTimeout(tick, Math.max(0, due - this.o.now()));
    };
    const tick = () => {
      const interval = this.pingIntervalNowMs();
      const now = this.o.now();
      // A timer may fire a hair before the clock we compare with says it is due: within SLACK_MS counts.
      if (now - lastPongAt >= 1.5 * interval - SLACK_MS) {
        onDead(`liveness lost: no pong for ${now - lastPongAt} ms (ping interval ${interval} ms)`);
        ws.terminate();
        return;
      }
      if (now - lastPingAt >= interval / 2 - SLACK_MS) {
        lastPingAt = now;
        ws.ping();
      }
      arm();
    };
    tick();
    return {
      stop: () => {
        stopped = true;
        clearTimeout(timer);
      },
      intervalChanged: () => {
        // A shorter interval may make a ping (or the end) due now: check at once, then re-arm.
        if (!stopped) tick();
      },
    };
  }
}

interface Liveness {
  stop(): void;
  /** The ping interval in force changed: the next ping and the deadline follow it from now. */
  intervalChanged(): void;
}

/** Timers fire at millisecond granularity against a clock read separately: this much early counts as due. */
const SLACK_MS = 2;
