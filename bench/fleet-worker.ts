import { setMaxListeners } from 'node:events';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { CloudAddresses, splitCloudUrls } from '../agent/link/cloud-addresses.js';
import { CloudLink } from '../agent/link/cloud-link.js';
import { AGENT_DEFAULTS, backoffPolicy, type DeviceSettings } from '../agent/settings.js';
import { HealthCollector } from '../agent/status/health.js';
import { HeartbeatSender } from '../agent/status/heartbeat.js';
import { readClientTls, readIdentity } from '../identity/identity-store.js';
import type { RunAction } from '../protocol/actions.js';
import type { RpcSession } from '../protocol/rpc-session.js';
import { PROTOCOL_VERSION } from '../protocol/version.js';

/**
 * One worker thread of the fleet simulator (fleet-simulator.ts): a slice of the terminals, each
 * on the real CloudLink (TLS client certificate, session resumption, Hello, ping/pong, backoff)
 * sending real heartbeats. It reports what happened in batches every 100 ms — who came online
 * when, each connection attempt, heartbeats sent — and the main thread measures the whole fleet.
 */
export interface WorkerInput {
  cloudUrl: string;
  /** Global index and state dir of each terminal of this worker. */
  terminals: { index: number; stateDir: string }[];
  /** Keep this worker's event loop ~95 % busy (to check that the bottleneck check fires). */
  burnCpu?: boolean;
  /** Where an update's artifact is downloaded from (the gateway it was published through). */
  artifactUrl: string;
}

export type WorkerReport =
  | { type: 'ready' }
  | {
      type: 'events';
      online: [index: number, at: number][];
      offline: number[];
      attempts: number[];
      /** Each link that ended or was refused: when, why (kind), the backoff drawn and its attempt number. */
      downs: [at: number, kind: DownKind, delayMs: number, attempt: number][];
      handshakes: { resumed: number; full: number };
      heartbeats: number;
      /** When each ApplyConfig arrived. */
      configs: number[];
      /** When each update action arrived (its start), and when each ended. */
      updateStarts: number[];
      updateEnds: [at: number, ok: boolean][];
      /** Artifact bytes downloaded since the last batch. */
      downloadBytes: number;
    };

const silent = { info() {}, warn() {}, error() {} };

/** Why a link attempt ended: the cloud's `503 cloud_busy`, a refused TCP connection (cloud down), or anything else. */
export type DownKind = 'busy' | 'connrefused' | 'other';

export function downKind(reason: string): DownKind {
  if (reason.includes('cloud_busy')) return 'busy';
  if (reason.includes('ECONNREFUSED') || reason.includes('refused the connection')) return 'connrefused';
  return 'other';
}

async function main(): Promise<void> {
  const input = workerData as WorkerInput;
  const port = parentPort!;
  const settings: DeviceSettings = { ...AGENT_DEFAULTS };
  const health = new HealthCollector(tmpdir());
  const stop = new AbortController();
  setMaxListeners(input.terminals.length + 10, stop.signal);
  const emptyBatch = () => ({
    online: [] as [number, number][],
    offline: [] as number[],
    attempts: [] as number[],
    downs: [] as [number, DownKind, number, number][],
    configs: [] as number[],
    updateStarts: [] as number[],
    updateEnds: [] as [number, boolean][],
  });
  let downloadBytes = 0;
  let batch = emptyBatch();
  const handshakes = { resumed: 0, full: 0 };
  let heartbeats = 0;
  const links: CloudLink[] = [];
  for (const t of input.terminals) {
    const identity = await readIdentity(t.stateDir);
    if (!identity) throw new Error(`no identity in ${t.stateDir}`);
    const tls = await readClientTls(identity);
    let session: RpcSession | undefined;
    /**
     * An update as a terminal makes it, minus the install: answered at once (downloading), the
     * signed artifact downloaded whole over mTLS, then reported completed — the deployment's
     * starts and the download bandwidth are what the fan-out measures.
     */
    const update = (a: RunAction) => {
      batch.updateStarts.push(Date.now());
      const version = (a.params as { release?: { version?: string } }).release?.version ?? '';
      const done = (ok: boolean, reason: string | null) => {
        batch.updateEnds.push([Date.now(), ok]);
        void session
          ?.call('ActionStatus', {
            actionId: a.actionId,
            status: ok ? 'completed' : 'failed',
            reason,
            step: ok ? 'committed' : 'downloading',
            percent: null,
            at: new Date().toISOString(),
          })
          .catch(() => {});
      };
      const req = request(
        new URL(`/v1/agent/releases/${encodeURIComponent(version)}/artifact`, input.artifactUrl),
        { ...tls, servername: undefined },
        (res) => {
          if (res.statusCode !== 200) {
            res.resume();
            return done(false, `artifact download: HTTP ${res.statusCode}`);
          }
          res.on('data', (c: Buffer) => {
            downloadBytes += c.length;
          });
          res.on('end', () => done(true, null));
          res.on('error', (err) => done(false, err.message));
        },
      );
      req.on('error', (err) => done(false, err.message));
      req.end();
      return { status: 'processing' as const, reason: null, step: 'downloading', percent: 0 };
    };
    const heartbeat = new HeartbeatSender({
      health,
      now: Date.now,
      queue: () => ({ stored: 0, oldestAt: null }),
      onSent: () => {
        heartbeats++;
      },
      log: silent,
    });
    const log = {
      ...silent,
      // The link logs its handshake (resumed or full) with "link online".
      info(obj: object, msg: string) {
        if (msg === 'link down; reconnecting after backoff') {
          const o = obj as { reason: string; delayMs: number; attempt: number };
          batch.downs.push([Date.now(), downKind(o.reason ?? ''), o.delayMs, o.attempt]);
          return;
        }
        if (msg !== 'link online') return;
        const h = (obj as { handshake?: string }).handshake;
        if (h === 'resumed') handshakes.resumed++;
        else if (h === 'full') handshakes.full++;
      },
    };
    links.push(
      new CloudLink(
        {
          // Several gateways: the cloud URL may list them, comma-separated (the agent's cloudUrls).
          cloud: new CloudAddresses(splitCloudUrls(input.cloudUrl), identity.terminalId),
          tls: () => tls,
          policy: backoffPolicy(settings),
          connectTimeoutMs: settings.connectTimeoutMs,
          callTimeoutMs: settings.callTimeoutMs,
          defaultPingIntervalSec: settings.pingIntervalSec,
          handlers: {
            ApplyConfig: (p: { version: number }) => {
              batch.configs.push(Date.now());
              // Applied, as a terminal reports it (the cloud records the applied version).
              setImmediate(() =>
                session
                  ?.call('ConfigApplied', {
                    version: p.version,
                    status: 'applied',
                    errors: [],
                    appliedVersion: p.version,
                  })
                  .catch(() => {}),
              );
              return { received: true };
            },
            RunAction: (a: RunAction) =>
              a.type === 'update'
                ? update(a)
                : { status: 'completed', reason: null, step: null, percent: null },
          },
          hello: () => ({
            terminalId: identity.terminalId,
            softwareVersion: 'fleet-sim',
            protocolVersion: PROTOCOL_VERSION,
            configVersion: null,
            bootId: identity.terminalId,
            queueDepth: 0,
            openActions: [],
            clock: new Date().toISOString(),
          }),
          onOnline: (online) => {
            batch.online.push([t.index, Date.now()]);
            session = online.session;
            online.signal.addEventListener('abort', () => batch.offline.push(t.index));
            void heartbeat.runWhileOnline(online, () => online.ack.heartbeatIntervalSec);
          },
          onStateChange: (snap) => {
            if (snap.state === 'connecting') batch.attempts.push(Date.now());
          },
          now: Date.now,
          random: Math.random,
          log,
        },
        { lastHeartbeatAt: null },
      ),
    );
  }
  const flush = setInterval(() => {
    if (
      !batch.online.length &&
      !batch.offline.length &&
      !batch.attempts.length &&
      !batch.downs.length &&
      !batch.configs.length &&
      !batch.updateStarts.length &&
      !batch.updateEnds.length &&
      !downloadBytes &&
      !heartbeats
    )
      return;
    port.postMessage({
      type: 'events',
      ...batch,
      handshakes: { ...handshakes },
      heartbeats,
      downloadBytes,
    } satisfies WorkerReport);
    downloadBytes = 0;
    batch = emptyBatch();
    handshakes.resumed = 0;
    handshakes.full = 0;
    heartbeats = 0;
  }, 100);
  port.on('message', (m: { type: 'start' | 'stop' }) => {
    if (m.type === 'start') for (const l of links) void l.run(stop.signal);
    else {
      stop.abort();
      clearInterval(flush);
      port.close();
    }
  });
  if (input.burnCpu) {
    const burn = setInterval(() => {
      const until = Date.now() + 95;
      while (Date.now() < until);
    }, 100);
    port.on('close', () => clearInterval(burn));
  }
  // Each terminal's TLS context (its key, certificate and CA parsed) is built before the start,
  // as each device builds its own on its own CPU: ~1.5 ms each, seconds for a worker's share.
  for (const l of links) l.prepareTls();
  port.postMessage({ type: 'ready' } satisfies WorkerReport);
}

void main();
