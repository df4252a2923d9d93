import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { WebSocket, WebSocketServer } from 'ws';
import { FleetCa, newPrivateKeyPem } from '../cloud/identity/fleet-ca.js';
import { type AgentDirs, startAgent } from '../harness/local-fleet.js';
import { serverTime, startScriptedCloud } from '../harness/scripted-cloud.js';
import { waitFor } from '../harness/wait-for.js';
import { DEFAULT_CONFIG, mergePatch } from '../protocol/config-schema.js';
import type { ConfigApplied } from '../protocol/messages.js';

/**
 * Config push → applied ack, measured where the cloud sees it: from sending ApplyConfig to
 * receiving ConfigApplied (the agent validates, commits with synchronous=FULL, then acks).
 * Beside it, the floor measured in the same run: a TLS WebSocket echo round trip plus one
 * durable SQLite commit.
 */
export async function measureConfigPush(
  cloudDataDir: string,
  dirs: AgentDirs,
  pushes: number,
): Promise<number[]> {
  const waiting = new Map<number, () => void>();
  const peer = await startScriptedCloud(cloudDataDir, () => ({
    Hello: () => ({ serverTime: serverTime(), heartbeatIntervalSec: 3600, pingIntervalSec: 15 }),
    Heartbeat: () => ({ serverTime: serverTime() }),
    ConfigApplied: (ack: ConfigApplied) => {
      waiting.get(ack.version)?.();
      return {};
    },
  }));
  const agent = startAgent(dirs, ['--cloud-url', peer.url, '--log-level', 'warn']);
  try {
    await waitFor(() => peer.links[0], 'the agent on the scripted cloud');
    const link = peer.links[0]!;
    await waitFor(() => link.frames.some((f) => f[2] === 'Hello'), 'Hello');
    const base = Date.now(); // versions above anything the agent applied before
    const times: number[] = [];
    for (let i = 0; i < pushes; i++) {
      const version = base + i;
      const config = mergePatch(DEFAULT_CONFIG, {
        display: { idleMessage: `push ${i}` },
        agent: { heartbeatIntervalSec: 3600 },
      });
      const acked = new Promise<void>((resolve) => waiting.set(version, resolve));
      const t0 = performance.now();
      await link.session.call('ApplyConfig', { version, config: config as Record<string, unknown> });
      await acked;
      times.push(performance.now() - t0);
      waiting.delete(version);
    }
    return times;
  } finally {
    agent.child.kill('SIGTERM');
    await agent.exited;
    peer.close();
  }
}

/** The floor: TLS WebSocket echo round trips and durable commits, n of each. */
export async function measureFloor(
  cloudDataDir: string,
  n: number,
): Promise<{ echo: number[]; commit: number[] }> {
  const { readFileSync } = await import('node:fs');
  const ca = FleetCa.load(
    readFileSync(join(cloudDataDir, 'ca.crt'), 'utf8'),
    readFileSync(join(cloudDataDir, 'ca.key'), 'utf8'),
  );
  const key = await newPrivateKeyPem();
  const server = createServer({ key, cert: ca.issueServerCertificate(key, ['127.0.0.1'], new Date()) });
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws) => ws.on('message', (d) => ws.send(d.toString())));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const ws = new WebSocket(`wss://127.0.0.1:${(server.address() as AddressInfo).port}`, {
    ca: ca.certificatePem,
  });
  await new Promise((r) => ws.once('open', r));
  const echo: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await new Promise<void>((resolve) => {
      ws.once('message', () => resolve());
      ws.send(JSON.stringify([2, String(i), 'Echo', { i }]));
    });
    echo.push(performance.now() - t0);
  }
  ws.close();
  wss.close();
  server.close();

  const db = new Database(join(mkdtempSync(join(tmpdir(), 'posagent-floor-')), 'floor.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
  const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
  const commit: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    insert.run(`row ${i}`);
    commit.push(performance.now() - t0);
  }
  db.close();
  return { echo, commit };
}
