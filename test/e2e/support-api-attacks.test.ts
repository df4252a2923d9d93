import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enrollByApi } from '../support/api-terminal.js';
import { cloudRows } from '../support/cloud-db.js';
import { type Cloud, startCloud } from '../support/processes.js';

/**
 * Issue 20: the new endpoints attacked over real HTTPS — form-body parser limits, unknown fields,
 * huge query strings, another organization's ids, a deactivated store. Each bad input gets a clear
 * coded error, and nothing stored changes (every table the support API writes, compared whole).
 */
type Answer = {
  status: number;
  body: { error?: { code: string; message: string } } & Record<string, unknown>;
};

function raw(cloud: Cloud, method: string, path: string, body: string, type: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      new URL(path, cloud.url),
      {
        method,
        ca: readFileSync(cloud.caFile, 'utf8'),
        headers: { 'x-api-key': cloud.adminToken, 'content-type': type },
      },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : {} }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const TABLES = [
  'organizations',
  'locations',
  'enrollment_codes',
  'terminals',
  'terminal_events',
  'revoked_certificates',
  'webhook_endpoints',
  'actions',
];

describe('the support API under bad input', () => {
  let cloud: Cloud;
  let acme = '';
  let acmeStore = '';
  let otherStore = '';
  let closedStore = '';
  let terminalId = '';
  const snapshot = () => TABLES.map((t) => cloudRows(cloud.dataDir, `SELECT * FROM ${t} ORDER BY rowid`));

  beforeAll(async () => {
    cloud = await startCloud();
    acme = (await cloud.api<{ id: string }>('POST', '/v1/organizations', { name: 'Acme', slug: 'acme' })).body
      .id;
    const other = (
      await cloud.api<{ id: string }>('POST', '/v1/organizations', { name: 'Other', slug: 'other' })
    ).body.id;
    acmeStore = (
      await cloud.api<{ id: string }>('POST', '/v1/locations', { name: 'A1', organizationId: acme })
    ).body.id;
    otherStore = (
      await cloud.api<{ id: string }>('POST', '/v1/locations', { name: 'O1', organizationId: other })
    ).body.id;
    closedStore = (
      await cloud.api<{ id: string }>('POST', '/v1/locations', { name: 'Closed', organizationId: acme })
    ).body.id;
    expect((await cloud.api('POST', `/v1/locations/${closedStore}`, { active: false })).status).toBe(200);
    terminalId = (await enrollByApi(cloud, 'Till A')).id;
  });
  afterAll(() => cloud?.stop());

  it('form bodies: too many fields, nesting, pollution, bad encoding, repeats, size — 4xx with a code; nothing stored', async () => {
    const before = snapshot();
    const form = (path: string, body: string, method = 'POST') =>
      raw(cloud, method, path, body, 'application/x-www-form-urlencoded');
    const cases: [Promise<Answer>, number, string, RegExp][] = [
      [
        form('/v1/organizations', Array.from({ length: 201 }, (_, i) => `f${i}=1`).join('&')),
        400,
        'invalid_form',
        /at most 200 fields/,
      ],
      [form('/v1/organizations', 'name=x&__proto__[admin]=1'), 400, 'invalid_form', /not allowed/],
      [form('/v1/organizations', 'name=%E2%82'), 400, 'invalid_form', /percent-encoding/],
      [form('/v1/organizations', 'name=a&name=b'), 400, 'invalid_form', /given twice/],
      [form('/v1/organizations', 'name[a][b][c][d][e]=x'), 400, 'invalid_form', /nests deeper/],
      [form('/v1/organizations', `name=${'x'.repeat(70_000)}`), 413, 'body_too_large', /exceeds 65536 bytes/],
      [
        form('/v1/organizations', '{"name":"json sent as a form"}'),
        400,
        'invalid_request',
        /\/name: Expected required property/,
      ],
      [form('/v1/organizations', 'name=Acme2&plan=gold'), 400, 'invalid_request', /plan/],
      [form('/v1/organizations', 'name=Acme2&slug=acme'), 409, 'slug_taken', /slug acme is taken/],
      [form(`/v1/locations/${acmeStore}`, 'active=maybe'), 400, 'invalid_request', /active/],
      [form(`/v1/locations/${acmeStore}`, 'timezone=Mars%2FOlympus'), 422, 'invalid_request', /IANA/],
      [
        form('/v1/enrollment-codes', `locationId=${acmeStore}&terminalName=T&ttlSeconds=soon`),
        400,
        'invalid_request',
        /ttlSeconds/,
      ],
      [form(`/v1/terminals/${terminalId}/actions`, 'action=explode'), 400, 'invalid_action', /action/],
      [
        form(`/v1/terminals/${terminalId}/actions`, 'action=reboot&type=lock'),
        400,
        'invalid_action',
        /same field/,
      ],
      [form(`/v1/terminals/${terminalId}`, 'displayName=A&name=B'), 400, 'invalid_request', /same field/],
      [
        form(`/v1/terminals/${terminalId}/revoke-certificate`, `reason=${'r'.repeat(501)}`),
        400,
        'invalid_request',
        /reason/,
      ],
    ];
    for (const [answer, status, code, message] of cases) {
      const r = await answer;
      expect([r.status, r.body.error?.code], JSON.stringify(r.body)).toEqual([status, code]);
      expect(r.body.error!.message).toMatch(message);
    }
    expect(snapshot()).toEqual(before);
  });

  it('query strings: a huge one, bad cursors and limits; another organization’s ids; a deactivated store', async () => {
    const before = snapshot();
    const get = (path: string) => cloud.api<Answer['body']>('GET', path);
    const post = (path: string, body: unknown) => cloud.api<Answer['body']>('POST', path, body);
    const cases: [Promise<{ status: number; body: Answer['body'] }>, number, string, RegExp][] = [
      [get(`/v1/terminals?q=${'x'.repeat(10_000)}`), 400, 'invalid_request', /1–100 characters/],
      [
        get(`/v1/terminals?starting_after=${'a'.repeat(5000)}`),
        400,
        'invalid_request',
        /starting_after must be/,
      ],
      [get('/v1/locations?limit=100000000000000000000'), 400, 'invalid_request', /limit/],
      [
        get('/v1/organizations?starting_after=org_nothere'),
        400,
        'invalid_request',
        /not an item of this list/,
      ],
      [
        get(`/v1/terminals/${terminalId}/events?starting_after=evt_1`),
        400,
        'invalid_request',
        /not an event id/,
      ],
      [
        get(`/v1/terminals?organizationId=${acme}&locationId=${otherStore}`),
        400,
        'invalid_request',
        /belongs to organization/,
      ],
      [
        post('/v1/connectedTerminals', { merchantAccount: 'acme', store: otherStore }),
        404,
        'not_found',
        /merchant account acme/,
      ],
      [
        post('/v1/connectedTerminals', { merchantAccount: 'acme', uniqueTerminalId: 'x'.repeat(201) }),
        400,
        'invalid_request',
        /uniqueTerminalId/,
      ],
      [
        post('/v1/enrollment-codes', { locationId: closedStore, terminalName: 'T' }),
        409,
        'location_inactive',
        /deactivated; reactivate/,
      ],
      [
        post(`/v1/terminals/${terminalId}`, { locationId: closedStore }),
        409,
        'location_inactive',
        /deactivated/,
      ],
      [
        post('/v1/locations', { name: 'X', organizationId: 'org_nope' }),
        404,
        'not_found',
        /no organization org_nope/,
      ],
      [
        post('/v1/terminals/activate?wait=61', { activationCode: 'ABCD-EFGH', locationId: acmeStore }),
        400,
        'invalid_request',
        /wait must be/,
      ],
      [post('/v1/terminals/term_nope/reprovision', {}), 404, 'not_found', /no terminal/],
      [post(`/v1/terminals/${terminalId}/rotate-certificate`, {}), 409, 'terminal_offline', /not connected/],
      [
        post(`/v1/terminals/${terminalId}/check-connection`, { timeoutMs: 'soon' }),
        400,
        'invalid_request',
        /timeoutMs/,
      ],
      [cloud.api('DELETE', '/v1/enrollment-codes/NOPE-NOPE'), 404, 'not_found', /no enrollment code/],
      [cloud.api('DELETE', '/v1/webhook-endpoints/we_nope'), 404, 'not_found', /no webhook endpoint/],
    ];
    for (const [answer, status, code, message] of cases) {
      const r = await answer;
      expect([r.status, r.body.error?.code], JSON.stringify(r.body)).toEqual([status, code]);
      expect(r.body.error!.message).toMatch(message);
    }
    // A query past the server's header limit is refused by HTTP itself, before any route runs.
    const huge = await get(`/v1/terminals?q=${'x'.repeat(20_000)}`).catch((err: Error) => ({
      status: -1,
      body: { err },
    }));
    expect([431, -1]).toContain(huge.status);
    expect(snapshot()).toEqual(before);
  });
});
