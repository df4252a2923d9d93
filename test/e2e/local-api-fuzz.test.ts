import { randomUUID } from 'node:crypto';
import { request } from 'node:http';
import { connect } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localApiRequest } from '../../agent/local-api/local-api-client.js';
import {
  type Cloud,
  enrollAgent,
  type Proc,
  startAgent,
  startCloud,
  waitForLink,
} from '../support/processes.js';

/** Sends raw bytes as a POST body (any bytes: not necessarily JSON). */
function post(socketPath: string, path: string, body: Buffer): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        socketPath,
        method: 'POST',
        path,
        headers: { 'content-type': 'application/json', 'content-length': body.length },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : null });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Issue 11: random bodies at the real daemon's local API — bad JSON, wrong types, huge bodies,
 * slow clients. Every answer is a 2xx or a 4xx with `{error: {code, message}}`; the daemon stays
 * up; only valid transactions are stored.
 */
describe('local API under random input', () => {
  let cloud: Cloud;
  let agent: Proc;
  let a: Awaited<ReturnType<typeof enrollAgent>>;
  const socket = () => `${a.dirs.runtimeDir}/api.sock`;

  beforeAll(async () => {
    cloud = await startCloud();
    a = await enrollAgent(cloud);
    agent = startAgent(a.dirs);
    await waitForLink(a.dirs);
  });
  afterAll(async () => {
    agent.child.kill('SIGKILL');
    await cloud.stop();
  });

  it('random and mutated bodies: 2xx or a 4xx with a code, never a 5xx, and only valid sales stored', async () => {
    const json = fc.jsonValue({ maxDepth: 3 });
    const sale = fc.record(
      {
        id: fc.oneof(fc.uuid(), fc.string({ maxLength: 80 }), fc.integer()),
        amount: fc.oneof(fc.integer({ min: -5, max: 200_000 }), fc.double(), fc.string({ maxLength: 5 })),
        currency: fc.oneof(fc.constantFrom('EUR', 'USD'), fc.string({ maxLength: 5 })),
        createdAt: fc.oneof(
          fc.constant(undefined),
          fc.string({ maxLength: 30 }),
          fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
        ),
        card: fc.oneof(
          fc.constant(undefined),
          json,
          fc.record({ pan: fc.string({ maxLength: 25 }), expiry: fc.string({ maxLength: 6 }) }),
        ),
      },
      { requiredKeys: [] },
    );
    const validSale = fc
      .record({
        id: fc.uuid(),
        amount: fc.integer({ min: 1, max: 5000 }),
        currency: fc.constantFrom('EUR', 'USD'),
      })
      .map((v) => Buffer.from(JSON.stringify(v)));
    const body = fc.oneof(
      validSale,
      fc.string({ maxLength: 300 }).map((s) => Buffer.from(s)),
      json.map((v) => Buffer.from(JSON.stringify(v))),
      sale.map((v) => Buffer.from(JSON.stringify(v))),
      fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
    );
    const statuses = new Map<number, number>();
    let created = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('/v1/transactions', '/v1/busy', '/v1/queue/flush', '/v1/nowhere'),
        body,
        async (path, b) => {
          const r = await post(socket(), path, b);
          statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
          expect(r.status).toBeLessThan(500);
          if (r.status === 201 && path === '/v1/transactions') created++;
          if (r.status >= 400) {
            const e = (r.body as { error: { code: string; message: string } }).error;
            expect(e.code).toMatch(/^[a-z_]+$/);
            expect(e.message.length).toBeGreaterThan(0);
          }
        },
      ),
      { numRuns: 400 },
    );
    process.stdout.write(
      `local API fuzz: ${JSON.stringify(Object.fromEntries(statuses))}, ${created} sales stored\n`,
    );
    const q = await localApiRequest<{ data: unknown[] }>(socket(), 'GET', '/v1/transactions?limit=1000');
    expect(q.body.data).toHaveLength(created);
  }, 120_000);

  it('a body over 16 KB → 413; the daemon still answers', async () => {
    const r = await post(socket(), '/v1/transactions', Buffer.alloc(64 * 1024, 0x61));
    expect(r.status).toBe(413);
    expect((r.body as { error: { code: string } }).error.code).toBe('body_too_large');
    expect((await localApiRequest(socket(), 'GET', '/v1/status')).status).toBe(200);
  });

  it('a client that sends half a body and stalls gets 408 and is disconnected; others are served meanwhile', async () => {
    const s = connect(socket());
    await new Promise((r) => s.once('connect', r));
    s.write(
      `POST /v1/transactions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"id":"${randomUUID()}"`,
    );
    let answer = '';
    s.on('data', (d: Buffer) => {
      answer += d.toString();
    });
    // Meanwhile the daemon serves everyone else.
    expect((await localApiRequest(socket(), 'GET', '/v1/status')).status).toBe(200);
    const closedAt = await new Promise<number>((r) => s.once('close', () => r(Date.now())));
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
    expect(answer).toContain('request_timeout');
    expect(closedAt).toBeGreaterThan(0);
  }, 15_000);

  it('a client that never finishes its headers is disconnected', async () => {
    const s = connect(socket());
    await new Promise((r) => s.once('connect', r));
    s.write('POST /v1/transactions HTTP/1.1\r\nHost: x\r\n');
    let answer = '';
    s.on('data', (d: Buffer) => {
      answer += d.toString();
    });
    await new Promise((r) => s.once('close', r));
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
    expect((await localApiRequest(socket(), 'GET', '/v1/status')).status).toBe(200);
  }, 15_000);
});
