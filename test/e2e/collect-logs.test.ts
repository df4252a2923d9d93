import { readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readClientTls, readIdentity } from '../../identity/identity-store.js';
import {
  type Cloud,
  enrollAgent,
  FAST_RECONNECT,
  httpsBinary,
  type Proc,
  queueAction,
  startAgent,
  startCloud,
  tempDir,
  waitForAction,
  waitForLink,
} from '../support/processes.js';

// A PAN that passes the Luhn check, a private key, a bearer token: none may reach the cloud's copy.
const PAN = '4111111111111111';
const journal = [
  JSON.stringify({ level: 30, msg: 'link online' }),
  JSON.stringify({ level: 20, msg: 'a debug line' }),
  JSON.stringify({ level: 50, msg: `declined card ${PAN}`, authorization: 'Bearer abcdefghijklmnopqrstu' }),
  '-----BEGIN PRIVATE KEY----- MIIBVQIBADANBgkqhkiG9w0BAQEFAASC -----END PRIVATE KEY-----',
  ...Array.from({ length: 20_000 }, (_, i) => JSON.stringify({ level: 30, i, msg: 'x'.repeat(100) })),
];

/**
 * Issue 24 item 5: logs as an action, through the built cloud and agent. The device's journal is a
 * fake `logsCommand` (the one thing the test cannot own) that prints pino lines with secrets in
 * them, more than the cap; the bundle arrives over mTLS, capped, with no PAN or secret in it.
 */
describe('collect_logs', () => {
  let cloud: Cloud;
  let agent: Proc;
  let a: Awaited<ReturnType<typeof enrollAgent>>;
  const fakes = tempDir('journal');
  const asked = join(fakes, 'asked.txt');

  beforeAll(async () => {
    writeFileSync(join(fakes, 'journal.txt'), `${journal.join('\n')}\n`);
    cloud = await startCloud();
    a = await enrollAgent(cloud);
    agent = startAgent(a.dirs, [], {
      ...FAST_RECONNECT,
      POSAGENT_LOGS_COMMAND: `echo {since} {until} > ${asked}; cat ${join(fakes, 'journal.txt')}`,
    });
    await waitForLink(a.dirs);
  });
  afterAll(async () => {
    agent.child.kill('SIGKILL');
    await cloud.stop();
  });

  it('the bundle arrives capped, at the level asked, with no PAN, key or token in it', async () => {
    const since = new Date(Date.now() - 3_600_000).toISOString();
    const until = new Date().toISOString();
    const queued = await queueAction(cloud, a.terminalId, {
      type: 'collect_logs',
      params: { since, until, level: 'info' },
    });
    expect(queued.params).toEqual({ since, until, level: 'info' });
    const done = await waitForAction(
      cloud,
      a.terminalId,
      queued.id,
      (x) => x.status === 'completed',
      'the logs uploaded',
    );
    expect(done.step).toBe('uploaded');
    const link = done.logs as string;
    expect(link).toBe(`/v1/terminals/${a.terminalId}/actions/${queued.id}/logs`);
    const got = await httpsBinary(cloud, link);
    expect(got.status).toBe(200);
    expect(got.contentType).toBe('application/gzip');
    const text = gunzipSync(got.body).toString('utf8');
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(1024 * 1024 + 300);
    expect(text.split('\n')[0]).toMatch(
      /^# posagent logs .* info and above: \d+ lines, the oldest \d+ left out \(over 1048576 bytes\)$/,
    );
    expect(text).toContain('"i":19999');
    expect(text).not.toContain('a debug line');
    expect(text).not.toContain(PAN);
    expect(text).not.toContain('abcdefghijklmnopqrstu');
    expect(text).not.toContain('MIIBVQIBADANBgkqhkiG9w0BAQEFAASC');
    expect(readFileSync(asked, 'utf8').trim()).toBe(
      `${Math.floor(Date.parse(since) / 1000)} ${Math.ceil(Date.parse(until) / 1000)}`,
    );
  });

  it('bad params are refused before anything is queued; a second upload, another terminal, or a bomb are refused', async () => {
    const now = Date.now();
    const bad = await cloud.api<{ error: { code: string; message: string } }>(
      'POST',
      `/v1/terminals/${a.terminalId}/actions`,
      {
        type: 'collect_logs',
        params: { since: new Date(now).toISOString(), until: new Date(now - 1000).toISOString() },
      },
    );
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('invalid_action');
    expect(bad.body.error.message).toMatch(/must be before until/);
    const noSpan = await cloud.api<{ error: { message: string } }>(
      'POST',
      `/v1/terminals/${a.terminalId}/actions`,
      { type: 'collect_logs' },
    );
    expect(noSpan.body.error.message).toBe('collect_logs needs params.since and params.until (ISO 8601)');
    expect(
      (await cloud.api<{ data: unknown[] }>('GET', `/v1/terminals/${a.terminalId}/actions`)).body.data,
    ).toHaveLength(1);

    // The terminal's own certificate, as an attacker holding one would use it.
    const identity = (await readIdentity(a.dirs.stateDir))!;
    const tls = await readClientTls(identity);
    const put = (actionId: string, body: Buffer) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request(
          new URL(`/v1/agent/actions/${actionId}/logs`, cloud.url),
          {
            method: 'PUT',
            ca: tls.ca,
            cert: tls.cert,
            key: tls.key,
            headers: { 'content-type': 'application/gzip' },
          },
          (res) => {
            let text = '';
            res.on('data', (c) => (text += c));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    const first = (
      await cloud.api<{ data: { id: string }[] }>('GET', `/v1/terminals/${a.terminalId}/actions`)
    ).body.data[0]!;
    const again = await put(first.id, gzipSync('more'));
    expect(again.status).toBe(409);
    expect(JSON.parse(again.body).error.message).toMatch(/is completed already/);
    expect((await put('act_nope', gzipSync('x'))).status).toBe(404);
    // A fresh action, then a zip bomb and a body that is not gzip: refused, nothing stored.
    const next = await queueAction(cloud, a.terminalId, {
      type: 'collect_logs',
      params: { since: new Date(now - 60_000).toISOString(), until: new Date(now).toISOString() },
      ttlSeconds: 60,
    });
    agent.child.kill('SIGSTOP'); // the agent must not upload first
    try {
      const bomb = await put(next.id, gzipSync(Buffer.alloc(50 * 1024 * 1024)));
      expect(bomb.status).toBe(422);
      expect(JSON.parse(bomb.body).error.message).toBe('the logs unpack to more than 1048576 bytes');
      expect(JSON.parse((await put(next.id, Buffer.from('not gzip'))).body).error.message).toBe(
        'the logs are not a gzip stream',
      );
      expect((await httpsBinary(cloud, `/v1/terminals/${a.terminalId}/actions/${next.id}/logs`)).status).toBe(
        404,
      );
    } finally {
      agent.child.kill('SIGCONT');
    }
  });
});
