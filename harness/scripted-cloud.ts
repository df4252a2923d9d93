import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { type WebSocket, WebSocketServer } from 'ws';
import { FleetCa, newPrivateKeyPem } from '../cloud/identity/fleet-ca.js';
import type { Handlers } from '../protocol/rpc-session.js';
import { RpcSession } from '../protocol/rpc-session.js';

/**
 * A protocol peer standing in for the cloud, for what the reference cloud will not do on purpose
 * (send garbage, withhold an answer). Its server certificate comes from the real cloud's fleet CA,
 * so a real agent trusts it; it speaks through the same RpcSession as the cloud.
 */
export interface ScriptedLink {
  ws: WebSocket;
  session: RpcSession;
  /** Every frame the agent sent on this link, parsed. */
  frames: unknown[][];
}

export interface ScriptedCloud {
  url: string;
  links: ScriptedLink[];
  close(): void;
}

export async function startScriptedCloud(
  cloudDataDir: string,
  handlers: (link: () => ScriptedLink) => Handlers,
): Promise<ScriptedCloud> {
  const ca = FleetCa.load(
    readFileSync(join(cloudDataDir, 'ca.crt'), 'utf8'),
    readFileSync(join(cloudDataDir, 'ca.key'), 'utf8'),
  );
  const key = await newPrivateKeyPem();
  const server = createServer({ key, cert: ca.issueServerCertificate(key, ['127.0.0.1'], new Date()) });
  const wss = new WebSocketServer({ server, handleProtocols: () => 'posagent.v1' });
  const links: ScriptedLink[] = [];
  wss.on('connection', (ws) => {
    const frames: unknown[][] = [];
    let link: ScriptedLink;
    const session = new RpcSession({
      answers: 'agentToCloud',
      send: (t) => ws.send(t),
      newId: randomUUID,
      callTimeoutMs: 5000,
      handlers: handlers(() => link),
    });
    link = { ws, session, frames };
    links.push(link);
    ws.on('message', (d) => {
      frames.push(JSON.parse(d.toString()) as unknown[]);
      session.receive(d.toString());
    });
    ws.on('close', () => session.close('closed'));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    links,
    close: () => {
      for (const c of wss.clients) c.terminate();
      wss.close();
      server.close();
    },
  };
}

export const serverTime = () => new Date().toISOString();
