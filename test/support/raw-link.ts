import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { WebSocket } from 'ws';
import type { Cloud } from './processes.js';
import { waitFor } from './wait-for.js';

/**
 * A terminal's link driven by hand: the frames a test writes go out as they are (a real agent
 * would never send them), and every frame the cloud sends back is kept.
 */
export interface RawLink {
  ws: WebSocket;
  frames: unknown[][];
  /** Sends a call frame; resolves with the cloud's answer (result or error frame) to it. */
  call(action: string, payload: unknown, id?: string): Promise<unknown[]>;
  /** Sends a call frame without waiting; returns its id. */
  send(action: string, payload: unknown, id?: string): string;
  answerTo(id: string, timeoutMs?: number): Promise<unknown[]>;
  hello(terminalId: string): Promise<unknown[]>;
  close(): void;
}

export async function openRawLink(
  cloud: Pick<Cloud, 'url' | 'caFile'>,
  id: { key: string; cert: string },
): Promise<RawLink> {
  const ws = new WebSocket(`${cloud.url.replace('https', 'wss')}/v1/agent`, 'posagent.v1', {
    ca: readFileSync(cloud.caFile, 'utf8'),
    key: id.key,
    cert: id.cert,
    maxPayload: 8 * 1024 * 1024,
  });
  const frames: unknown[][] = [];
  ws.on('message', (d) => frames.push(JSON.parse(d.toString()) as unknown[]));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`link refused: HTTP ${res.statusCode}`)));
  });
  const send = (action: string, payload: unknown, callId: string = randomUUID()) => {
    ws.send(JSON.stringify([2, callId, action, payload]));
    return callId;
  };
  const answerTo = (callId: string, timeoutMs = 20_000) =>
    waitFor(
      () => frames.find((f) => (f[0] === 3 || f[0] === 4) && f[1] === callId),
      `the answer to ${callId}`,
      timeoutMs,
    );
  return {
    ws,
    frames,
    send,
    answerTo,
    call: (action, payload, callId) => answerTo(send(action, payload, callId)),
    hello: (terminalId) =>
      answerTo(
        send('Hello', {
          terminalId,
          softwareVersion: '0.1.0',
          protocolVersion: 1,
          configVersion: null,
          bootId: 'boot-raw',
          queueDepth: 0,
          openActions: [],
          clock: new Date().toISOString(),
        }),
      ),
    close: () => ws.close(),
  };
}
