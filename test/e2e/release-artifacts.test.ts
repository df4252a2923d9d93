import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { request } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  newReleaseKey,
  packRelease,
  publishRelease,
  type ReleaseKey,
  type SignedRelease,
  signRelease,
} from '../../harness/releases.js';
import { enrollByApi } from '../support/api-terminal.js';
import { type Cloud, startCloud, tempDir } from '../support/processes.js';
import { startRestProbe } from '../support/rest-probe.js';
import { waitFor } from '../support/wait-for.js';

function rssMb(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) / 1024;
}

/**
 * Issue 17.6: artifacts stream. 200 slow readers of a release took the cloud from 182 to 572 MB
 * (each download read the whole file into memory); a release with a bad signature was stored and
 * burnt its version. Now downloads stream from disk with backpressure (and Range), uploads are
 * hashed while they stream to disk, and the signature is checked with the configured release
 * public key when the release is published.
 */
describe('release artifacts', () => {
  let cloud: Cloud;
  let key: ReleaseKey;
  let tarball: string;
  let signed: SignedRelease;
  let terminal: { key: string; cert: string };

  beforeAll(async () => {
    key = await newReleaseKey();
    cloud = await startCloud(['--release-public-key', key.publicKeyFile]);
    tarball = await packRelease('9.1.0', tempDir('packs'));
    signed = await signRelease(tarball, key);
    terminal = await enrollByApi(cloud, 'Till R');
  }, 120_000);
  afterAll(() => cloud?.stop());

  it('a badly signed release is refused at publish and does not take the version; the properly signed one then publishes', async () => {
    const rogue = await newReleaseKey();
    const bad = await signRelease(tarball, rogue);
    const r = await publishRelease(cloud, tarball, bad);
    expect(r.status).toBe(422);
    expect(r.body).toMatchObject({ error: { code: 'release_signature_invalid' } });
    expect((r.body as { error: { message: string } }).error.message).toMatch(
      /^the signature of 9\.1\.0 \(sha256 [0-9a-f]{64}, \d+ bytes\) does not verify with any release public key of this cloud$/,
    );
    // A signature over another artifact (valid base64, right key) is refused the same way.
    const other = await signRelease(await packRelease('9.1.1', tempDir('packs')), key);
    expect((await publishRelease(cloud, tarball, { ...signed, signature: other.signature })).status).toBe(
      422,
    );
    expect((await cloud.api('GET', '/v1/releases/9.1.0')).status).toBe(404);
    expect((await cloud.api<{ data: unknown[] }>('GET', '/v1/releases')).body.data).toEqual([]);
    const ok = await publishRelease(cloud, tarball, signed);
    expect(ok.status).toBe(201);
    expect(ok.body).toMatchObject({ version: '9.1.0', sha256: signed.sha256, size: signed.size });

    // A cloud without a release key refuses to publish at all, and says how to fix it.
    const keyless = await startCloud();
    try {
      const refused = await publishRelease(keyless, tarball, signed);
      expect(refused.status).toBe(409);
      expect(refused.body).toEqual({
        error: {
          code: 'release_key_not_configured',
          message:
            'this cloud has no release public key to check signatures with: start it with --release-public-key FILE',
        },
      });
    } finally {
      await keyless.stop();
    }
  });

  const download = (headers: Record<string, string> = {}) =>
    new Promise<IncomingMessage>((resolve, reject) => {
      const req = request(
        new URL(`/v1/agent/releases/9.1.0/artifact`, cloud.url),
        { ca: readFileSync(cloud.caFile, 'utf8'), ...terminal, agent: false, headers },
        resolve,
      );
      req.on('error', reject);
      req.end();
    });
  const body = (res: IncomingMessage) =>
    new Promise<Buffer>((resolve) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks)));
    });

  it('Range: a tail, a span, a suffix; past the end 416', async () => {
    const bytes = readFileSync(tarball);
    const tail = await download({ range: 'bytes=1000-' });
    expect(tail.statusCode).toBe(206);
    expect(tail.headers['content-range']).toBe(`bytes 1000-${bytes.length - 1}/${bytes.length}`);
    expect((await body(tail)).equals(bytes.subarray(1000))).toBe(true);
    const span = await download({ range: 'bytes=10-109' });
    expect(span.statusCode).toBe(206);
    expect((await body(span)).equals(bytes.subarray(10, 110))).toBe(true);
    const suffix = await download({ range: 'bytes=-50' });
    expect((await body(suffix)).equals(bytes.subarray(bytes.length - 50))).toBe(true);
    const past = await download({ range: `bytes=${bytes.length}-` });
    expect(past.statusCode).toBe(416);
    expect(past.headers['content-range']).toBe(`bytes */${bytes.length}`);
    expect(JSON.parse((await body(past)).toString())).toMatchObject({
      error: { code: 'range_not_satisfiable' },
    });
  });

  it('200 slow readers: the cloud grows by < 50 MB, and every reader gets the whole artifact', async () => {
    const pid = cloud.proc.child.pid!;
    // One whole download first: code paths and buffers warm, as the baseline.
    expect(
      createHash('sha256')
        .update(await body(await download()))
        .digest('hex'),
    ).toBe(signed.sha256);
    const baseline = rssMb(pid);
    let peak = baseline;
    const sampler = setInterval(() => {
      peak = Math.max(peak, rssMb(pid));
    }, 50);
    const probe = await startRestProbe(cloud);
    const readers = await Promise.all(Array.from({ length: 200 }, () => download()));
    for (const r of readers) {
      expect(r.statusCode).toBe(200);
      r.pause();
    }
    const hashes = readers.map(() => createHash('sha256'));
    const received = readers.map(() => 0);
    // Stalled for a while: the cloud must not read ahead for them.
    const stalledUntil = Date.now() + 2500;
    await waitFor(() => Date.now() >= stalledUntil, 'the stall', 5000, 100);
    // Then slow: a chunk now and then.
    readers.forEach((r, i) => {
      r.on('data', (c: Buffer) => {
        hashes[i]!.update(c);
        received[i]! += c.length;
        r.pause();
        setTimeout(() => r.resume(), 100);
      });
      r.resume();
    });
    const slowUntil = Date.now() + 3000;
    await waitFor(() => Date.now() >= slowUntil, 'the slow phase', 6000, 100);
    const duringSlow = peak;
    // Then all at full speed to the end.
    for (const r of readers) r.removeAllListeners('data');
    readers.forEach((r, i) => {
      r.on('data', (c: Buffer) => {
        hashes[i]!.update(c);
        received[i]! += c.length;
      });
    });
    for (const r of readers) r.resume();
    await Promise.all(
      readers.map(
        (r) =>
          new Promise((resolve) => {
            if (r.complete) resolve(null);
            else r.on('end', resolve);
          }),
      ),
    );
    clearInterval(sampler);
    const figures = await probe.stop();
    peak = Math.max(peak, rssMb(pid));
    console.log(
      `200 slow readers of a ${(signed.size / 1024 / 1024).toFixed(2)} MB release: cloud RSS ${baseline.toFixed(1)} MB before, peak ${duringSlow.toFixed(1)} MB while stalled/slow, ${peak.toFixed(1)} MB peak overall (+${(peak - baseline).toFixed(1)} MB); REST probe during: ${JSON.stringify(figures)}`,
    );
    expect(figures.errors).toBe(0);
    expect(received.every((n) => n === signed.size)).toBe(true);
    expect(new Set(hashes.map((h) => h.digest('hex')))).toEqual(new Set([signed.sha256]));
    expect(peak - baseline).toBeLessThan(50);
  });
});
