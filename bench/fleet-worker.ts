import { setMaxListeners } from 'node:events';
import { tmpdir } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { CloudAddresses, splitCloudUrls } from '../agent/link/cloud-addresses.js';
import { CloudLink } from '../agent/link/cloud-link.js';
import { AGENT_DEFAULTS, backoffPolicy, type DeviceSettings } from '../agent/settings.js';
import { HealthCollector } from '../agent/status/health.js';
import { HeartbeatSender } from '../agent/status/heartbeat.js';
import { readClientTls, readIdentity } from '../identity/identity-store.js';
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
}

export type WorkerReport =
  | { type: 'ready' }
  | {
      type: 'events';
      online: [index: number, at: number][];
      offline: number[];
      attempts: number[];
      handshakes: { resumed: number; full: number };
      heartbeats: number;
    };

const silent = { info() {}, warn() {}, error() {} };

async function main(): Promise<void> {
  const input = workerData as WorkerInput;
  const port = parentPort!;
  const settings: DeviceSettings = { ...AGENT_DEFAULTS };
  const health = new HealthCollector(tmpdir());
  const stop = new AbortController();
  setMaxListeners(input.terminals.length + 10, stop.signal);
  let batch = { online: [] as [number, number][], offline: [] as number[], attempts: [] as number[] };
  const handshakes = { resumed: 0, full: 0 };
  let heartbeats = 0;
  const links: CloudLink[] = [];
  for (const t of input.terminals) {
    const identity = await readIdentity(t.stateDir);
    if (!identity) throw new Error(`no identity in ${t.stateDir}`);
    const tls = await readClientTls(identity);
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
          handlers: { ApplyConfig: () => ({ received: true }) },
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
    if (!batch.online.length && !batch.offline.length && !batch.attempts.length && !heartbeats) return;
    port.postMessage({
      type: 'events',
      ...batch,
      handshakes: { ...handshakes },
      heartbeats,
    } satisfies WorkerReport);
    batch = { online: [], offline: [], attempts: [] };
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
  port.postMessage({ type: 'ready' } satisfies WorkerReport);
}

void main();
