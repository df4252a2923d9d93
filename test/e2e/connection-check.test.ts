import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  agentDirs,
  type Cloud,
  enrollWithCli,
  type Proc,
  startAgent,
  startCloud,
  waitForLink,
} from '../support/processes.js';
import { waitFor } from '../support/wait-for.js';

/**
 * Issue 20, Must show 3 (Adyen's part): `POST /v1/connectedTerminals` in Adyen's forms
 * (merchantAccount = org slug, store, uniqueTerminalId as a POIID `[model]-[serial]`) answered in
 * the form asked, and `POST /v1/terminals/{id}/check-connection` — a real `Ping` round trip over
 * the link — telling connected, disconnected, and connected-but-not-answering (a frozen agent).
 */
function form(cloud: Cloud, path: string, body: string): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request(
      new URL(path, cloud.url),
      {
        method: 'POST',
        ca: readFileSync(cloud.caFile, 'utf8'),
        headers: {
          'x-api-key': cloud.adminToken,
          'content-type': 'application/x-www-form-urlencoded',
        },
      },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('Adyen connectedTerminals and the live connection check', () => {
  let cloud: Cloud;
  const agents: Proc[] = [];
  const ids: Record<string, string> = {};
  let downtown = '';
  let otherStore = '';

  beforeAll(async () => {
    cloud = await startCloud(['--heartbeat-interval', '1']);
    const org = await cloud.api<{ id: string }>('POST', '/v1/organizations', { name: 'Acme', slug: 'acme' });
    const other = await cloud.api<{ id: string }>('POST', '/v1/organizations', {
      name: 'Other',
      slug: 'other',
    });
    downtown = (
      await cloud.api<{ id: string }>('POST', '/v1/locations', {
        name: 'Downtown',
        organizationId: org.body.id,
      })
    ).body.id;
    const uptown = (
      await cloud.api<{ id: string }>('POST', '/v1/locations', {
        name: 'Uptown',
        organizationId: org.body.id,
      })
    ).body.id;
    otherStore = (
      await cloud.api<{ id: string }>('POST', '/v1/locations', {
        name: 'Elsewhere',
        organizationId: other.body.id,
      })
    ).body.id;
    for (const [serial, store] of [
      ['SN-A', downtown],
      ['SN-B', uptown],
      ['SN-C', otherStore],
    ] as const) {
      const env = { POSAGENT_SERIAL_NUMBER: serial, POSAGENT_MODEL: 'nexgo_n92' };
      const code = await cloud.api<{ code: string }>('POST', '/v1/enrollment-codes', {
        locationId: store,
        terminalName: serial,
      });
      const dirs = agentDirs();
      const r = await enrollWithCli(cloud, code.body.code, dirs, { env });
      ids[serial] = r.json<{ terminalId: string }>().terminalId;
      agents.push(startAgent(dirs, [], env));
      await waitForLink(dirs);
    }
  });
  afterAll(async () => {
    for (const a of agents)
      if (a.child.exitCode === null) {
        a.child.kill('SIGCONT');
        a.child.kill('SIGTERM');
        await a.exited;
      }
    await cloud.stop();
  });

  it('connectedTerminals: by merchant account, by store (id or name), by POIID — in the form asked', async () => {
    const ask = async (body: object) =>
      (await cloud.api<{ uniqueTerminalIds: string[] }>('POST', '/v1/connectedTerminals', body)).body
        .uniqueTerminalIds;
    await waitFor(async () => (await ask({})).length === 3, 'all three connected');
    expect(await ask({ merchantAccount: 'acme' })).toEqual(['nexgo_n92-SN-A', 'nexgo_n92-SN-B']);
    expect(await ask({ merchantAccount: 'acme', store: 'Downtown' })).toEqual(['nexgo_n92-SN-A']);
    expect(await ask({ merchantAccount: 'acme', store: downtown })).toEqual(['nexgo_n92-SN-A']);
    expect(await ask({ merchantAccount: 'acme', uniqueTerminalId: 'nexgo_n92-SN-B' })).toEqual([
      'nexgo_n92-SN-B',
    ]);
    // Our own forms answer in our ids.
    expect(await ask({ locationId: downtown })).toEqual([ids['SN-A']]);
    expect(await ask({ uniqueTerminalId: ids['SN-C'] })).toEqual([ids['SN-C']]);
    // A form body, as curl -d sends it.
    const f = await form(cloud, '/v1/connectedTerminals', 'merchantAccount=acme&store=Uptown');
    expect(f).toEqual({ status: 200, body: { uniqueTerminalIds: ['nexgo_n92-SN-B'] } });

    // What is named must belong to the merchant account: clear coded refusals.
    const refused = async (body: object) => {
      const r = await cloud.api<{ error: { code: string; message: string } }>(
        'POST',
        '/v1/connectedTerminals',
        body,
      );
      return [r.status, r.body.error.code, r.body.error.message];
    };
    expect(await refused({ merchantAccount: 'nope' })).toEqual([404, 'not_found', 'no organization nope']);
    expect(await refused({ merchantAccount: 'acme', store: otherStore })).toEqual([
      404,
      'not_found',
      `no store ${otherStore} in merchant account acme`,
    ]);
    expect(await refused({ merchantAccount: 'acme', uniqueTerminalId: 'nexgo_n92-SN-C' })).toEqual([
      404,
      'not_found',
      'no terminal nexgo_n92-SN-C in merchant account acme',
    ]);
    expect(await refused({ store: 'Downtown' })).toEqual([
      400,
      'invalid_request',
      'store needs merchantAccount (the organization slug) beside it',
    ]);
    expect((await refused({ merchantAccount: 'acme', shop: 'x' }))[1]).toBe('invalid_request');
  });

  it('check-connection: connected with its RTT; a frozen agent is connected but not answering; a stopped one is disconnected', async () => {
    const check = async (id: string, body: object = {}) =>
      (await cloud.api<Record<string, unknown>>('POST', `/v1/terminals/${id}/check-connection`, body)).body;
    const ok = await check(ids['SN-B']!);
    expect(ok).toMatchObject({ object: 'connection_check', connected: true });
    expect(typeof ok.rttMs).toBe('number');

    // Frozen: the process stops (SIGSTOP); its TCP connection and the cloud's cached flag stay.
    const b = agents[1]!;
    b.child.kill('SIGSTOP');
    try {
      const frozen = await check(ids['SN-B']!, { timeoutMs: 1000 });
      expect(frozen).toMatchObject({
        connected: false,
        linkOpen: true,
        reason: 'the link is open but the terminal did not answer within 1000 ms',
      });
      // The cached flag still says connected — the difference the live check makes.
      const cached = await cloud.api<{ connected: boolean }>('GET', `/v1/terminals/${ids['SN-B']}`);
      expect(cached.body.connected).toBe(true);
    } finally {
      b.child.kill('SIGCONT');
    }
    await waitFor(async () => (await check(ids['SN-B']!)).connected === true, 'answering again');

    // Stopped: no link at all.
    b.child.kill('SIGTERM');
    await b.exited;
    await waitFor(async () => (await check(ids['SN-B']!)).linkOpen === undefined, 'the link gone');
    expect(await check(ids['SN-B']!)).toMatchObject({
      connected: false,
      reason: 'no link: the terminal is turned off or cannot reach the cloud',
    });

    // Bad input: a clear code, nothing else.
    const bad = await cloud.api<{ error: { code: string } }>(
      'POST',
      `/v1/terminals/${ids['SN-A']}/check-connection`,
      {
        timeoutMs: 10,
      },
    );
    expect([bad.status, bad.body.error.code]).toEqual([400, 'invalid_request']);
    const none = await cloud.api<{ error: { code: string } }>(
      'POST',
      '/v1/terminals/term_nope/check-connection',
    );
    expect([none.status, none.body.error.code]).toEqual([404, 'not_found']);
  });
});
