import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type WebSocket, WebSocket as WsClient } from 'ws';
import { type Cloud, enrollAgent, startAgent, startCloud } from '../support/processes.js';
import { startScriptedCloud } from '../support/scripted-cloud.js';
import { waitFor } from '../support/wait-for.js';

/** Collects text frames from a socket; tests wait on the list. */
function frames(ws: WebSocket): unknown[][] {
  const got: unknown[][] = [];
  ws.on('message', (d) => got.push(JSON.parse(d.toString()) as unknown[]));
  return got;
}

const now = () => new Date().toISOString();
const hello = (terminalId: string) => ({
  terminalId,
  softwareVersion: '0.1.0',
  protocolVersion: 1,
  configVersion: null,
  bootId: 'boot-1',
  queueDepth: 0,
  openActions: [],
  clock: now(),
});

/** Issue 3: a malformed frame gets an RPC error frame, and the link stays up — both directions. */
describe('malformed frames', () => {
  let cloud: Cloud;
  let enrolled: Awaited<ReturnType<typeof enrollAgent>>;
  beforeAll(async () => {
    cloud = await startCloud();
    enrolled = await enrollAgent(cloud);
  });
  afterAll(() => cloud?.stop());

  it('the cloud answers each bad frame with an error frame and keeps the link', async () => {
    const { stateDir } = enrolled.dirs;
    const ws = new WsClient(`${cloud.url.replace('https', 'wss')}/v1/agent`, 'posagent.v1', {
      ca: readFileSync(cloud.caFile, 'utf8'),
      key: readFileSync(join(stateDir, 'keys/client.key'), 'utf8'),
      cert: readFileSync(join(stateDir, 'certs/client.crt'), 'utf8'),
    });
    const got = frames(ws);
    await new Promise((r) => ws.once('open', r));
    const cases: [string | Buffer, unknown[]][] = [
      ['not json at all', [4, '-1', 'RpcFrameworkError']],
      ['{"an":"object"}', [4, '-1', 'RpcFrameworkError']],
      ['[9, "a1", "Hello", {}]', [4, 'a1', 'MessageTypeNotSupported']],
      ['[2, "a2", "Hello"]', [4, 'a2', 'FormatViolation']],
      ['[2, "a3", "Launch", {}]', [4, 'a3', 'NotImplemented']],
      [
        JSON.stringify([2, 'a4', 'Hello', { ...hello(enrolled.terminalId), queueDepth: -1 }]),
        [4, 'a4', 'PropertyConstraintViolation'],
      ],
      [
        JSON.stringify([2, 'a5', 'Hello', { terminalId: enrolled.terminalId }]),
        [4, 'a5', 'OccurrenceConstraintViolation'],
      ],
      [
        JSON.stringify([2, 'a6', 'Hello', { ...hello(enrolled.terminalId), bootId: 7 }]),
        [4, 'a6', 'TypeConstraintViolation'],
      ],
      [
        JSON.stringify([2, 'a7', 'Heartbeat', { nonsense: true }]),
        [4, 'a7', 'OccurrenceConstraintViolation'],
      ],
      [Buffer.from([1, 2, 3]), [4, '-1', 'RpcFrameworkError']],
      // Issue 17.8: every call but Hello needs Hello first, ConfigApplied included.
      [
        JSON.stringify([
          2,
          'a8',
          'ConfigApplied',
          { version: 1, status: 'applied', errors: [], appliedVersion: 1 },
        ]),
        [4, 'a8', 'ProtocolError'],
      ],
      // A known action sent the wrong way (cloud → agent, sent to the cloud): NotSupported.
      [JSON.stringify([2, 'a9', 'ApplyConfig', { version: 1, config: {} }]), [4, 'a9', 'NotSupported']],
      [JSON.stringify([2, 'x'.repeat(37), 'Hello', {}]), [4, '-1', 'RpcFrameworkError']],
    ];
    for (const [i, [frame, expected]] of cases.entries()) {
      ws.send(frame);
      const answer = await waitFor(() => got[i], `answer to case ${i}`);
      expect(answer.slice(0, 3), `case ${i}: ${String(frame).slice(0, 40)}`).toEqual(expected);
      expect(typeof answer[3]).toBe('string');
    }
    // Still the same link: a valid Hello is answered with a result.
    ws.send(JSON.stringify([2, 'ok-1', 'Hello', hello(enrolled.terminalId)]));
    const ok = await waitFor(() => got.find((f) => f[1] === 'ok-1'), 'Hello result');
    expect(ok[0]).toBe(3);
    expect(ok[2]).toMatchObject({ heartbeatIntervalSec: 30, pingIntervalSec: 15 });
    expect(ws.readyState).toBe(WsClient.OPEN);
    ws.close();
  });

  it('the agent answers each bad frame with an error frame and keeps the link (heartbeats go on)', async () => {
    // The scripted peer sends garbage on purpose; the reference cloud never would.
    const heartbeats: unknown[] = [];
    const peer = await startScriptedCloud(cloud.dataDir, () => ({
      Hello: () => ({ serverTime: now(), heartbeatIntervalSec: 1, pingIntervalSec: 15 }),
      Heartbeat: (p) => {
        heartbeats.push(p);
        return { serverTime: now() };
      },
    }));
    const url = peer.url;
    const raw = () => peer.links[0]?.frames.filter((f) => f[0] === 4) ?? [];
    const agent = startAgent(enrolled.dirs, ['--cloud-url', url]);
    try {
      await waitFor(() => heartbeats.length >= 1, 'a first heartbeat');
      const ws = peer.links[0]!.ws;
      ws.send('}{ garbage');
      ws.send('[2, "c1", "Reboot", {}]');
      ws.send('[3, "never-asked", {}]');
      ws.send('[2, "c2", "Hello", {"terminalId": "x"}]');
      const errors = await waitFor(
        () => (raw().length >= 3 ? raw() : undefined),
        'three error frames from the agent',
      );
      expect(errors.map((f) => f.slice(0, 3))).toEqual([
        [4, '-1', 'RpcFrameworkError'],
        [4, 'c1', 'NotImplemented'],
        [4, 'c2', 'NotSupported'],
      ]);
      const before = heartbeats.length;
      await waitFor(() => heartbeats.length >= before + 2, 'heartbeats to go on after the bad frames');
      expect(ws.readyState).toBe(WsClient.OPEN);
      expect(agent.output()).toMatch(/protocol error/);
    } finally {
      agent.child.kill('SIGKILL');
      peer.close();
    }
  });
});
