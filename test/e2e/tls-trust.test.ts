import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import {
  type AgentDirs,
  agentDirs,
  type Cloud,
  cli,
  enrollAgent,
  enrollWithCli,
  newEnrollmentCode,
  startAgent,
  startCloud,
} from '../support/processes.js';
import { waitFor } from '../support/wait-for.js';

function identity(dirs: AgentDirs) {
  return {
    key: readFileSync(join(dirs.stateDir, 'keys/client.key'), 'utf8'),
    cert: readFileSync(join(dirs.stateDir, 'certs/client.crt'), 'utf8'),
  };
}

/** Opens a raw link and resolves with the HTTP refusal (status + error body), or 'open'. */
function tryLink(url: string, ca: string, id: { key?: string; cert?: string }, protocol = 'posagent.v1') {
  return new Promise<{ status: number; error?: { code: string; message: string } } | 'open'>(
    (resolve, reject) => {
      const ws = new WebSocket(`${url.replace('https', 'wss')}/v1/agent`, protocol, { ca, ...id });
      ws.on('open', () => {
        ws.close();
        resolve('open');
      });
      ws.on('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (c: Buffer) => {
          body += c.toString();
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            error: (JSON.parse(body) as { error: { code: string; message: string } }).error,
          }),
        );
      });
      ws.on('error', reject);
    },
  );
}

/** Issue 3: each side verifies the other against the fleet CA. */
describe('TLS trust on the agent link', () => {
  let cloudA: Cloud;
  let cloudB: Cloud;
  let agentOfB: Awaited<ReturnType<typeof enrollAgent>>;
  let agentOfA: Awaited<ReturnType<typeof enrollAgent>>;

  beforeAll(async () => {
    [cloudA, cloudB] = await Promise.all([startCloud(), startCloud()]);
    [agentOfA, agentOfB] = await Promise.all([enrollAgent(cloudA), enrollAgent(cloudB)]);
  });
  afterAll(async () => {
    await Promise.all([cloudA?.stop(), cloudB?.stop()]);
  });

  it('the cloud refuses a client certificate from another CA at the WebSocket handshake', async () => {
    const caA = readFileSync(cloudA.caFile, 'utf8');
    const r = await tryLink(cloudA.url, caA, identity(agentOfB.dirs));
    expect(r).toMatchObject({ status: 403, error: { code: 'client_certificate_rejected' } });
    expect(r !== 'open' && r.error?.message).toMatch(/not issued by this fleet's CA/);
    // The same cloud admits its own terminal, so the refusal is about the CA.
    expect(await tryLink(cloudA.url, caA, identity(agentOfA.dirs))).toBe('open');
  });

  it('the cloud refuses a link without a client certificate, or without the subprotocol', async () => {
    const caA = readFileSync(cloudA.caFile, 'utf8');
    expect(await tryLink(cloudA.url, caA, {})).toMatchObject({
      status: 401,
      error: { code: 'client_certificate_required' },
    });
    expect(await tryLink(cloudA.url, caA, identity(agentOfA.dirs), 'other.v1')).toMatchObject({
      status: 400,
      error: { code: 'subprotocol_required' },
    });
  });

  it('the agent refuses a cloud whose certificate is not from its pinned CA, and says so', async () => {
    // Agent of A pointed at cloud B (a moved or spoofed cloud): B's certificate does not chain to A's CA.
    const agent = startAgent(agentOfA.dirs, ['--cloud-url', cloudB.url]);
    try {
      const status = await waitFor(async () => {
        const r = await cli(['status', '--json', ...agentOfA.dirs.flags]);
        const doc = r.json<{ daemon: string; link: { state: string; reason?: string } }>();
        return doc.daemon === 'running' && doc.link.state === 'error' ? doc : undefined;
      }, 'link state error');
      expect(status.link.reason).toMatch(/not signed by the pinned fleet CA/);
      expect(agent.output()).toMatch(/not signed by the pinned fleet CA/);
    } finally {
      agent.child.kill('SIGKILL');
    }
  });

  it('enrollment refuses a cloud that the given CA file does not vouch for, and writes nothing', async () => {
    const { code } = await newEnrollmentCode(cloudB);
    const dirs = agentDirs();
    const r = await enrollWithCli(cloudB, code, dirs, { caFile: cloudA.caFile });
    expect(r.code).toBe(1);
    expect(r.json<{ error: { code: string; message: string } }>().error).toMatchObject({
      code: 'cloud_untrusted',
    });
    expect(r.json<{ error: { message: string } }>().error.message).toMatch(
      /not signed by the pinned fleet CA/,
    );
  });
});
