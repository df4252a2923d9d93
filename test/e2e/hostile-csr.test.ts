import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cloudCount } from '../support/cloud-db.js';
import { ecCsr, ed25519Csr, hostileRsaCsr, rsaCsr } from '../support/csrs.js';
import { type Cloud, newEnrollmentCode, startCloud } from '../support/processes.js';
import { startRestProbe } from '../support/rest-probe.js';

type Refusal = { error: { code: string; message: string } };

/**
 * The key-policy cases, made before the cloud is asked anything: key generation blocks this
 * process for seconds, long enough for a pooled keep-alive connection to expire under it.
 */
function keyPolicyCases() {
  const accepted = [
    { csr: ecCsr('prime256v1') },
    { csr: ecCsr('secp384r1') },
    rsaCsr(2048),
    rsaCsr(3072),
    rsaCsr(4096),
  ];
  const good = rsaCsr(2048).csr;
  const badSignature = (() => {
    const b64 = good
      .split('\n')
      .filter((l) => l && !l.startsWith('-----'))
      .join('');
    const der = Buffer.from(b64, 'base64');
    der[der.length - 5] = der[der.length - 5]! ^ 0xff; // inside the signature BIT STRING
    return `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
  })();
  const refused: [string, string, RegExp][] = [
    ['RSA 1024', rsaCsr(1024).csr, /RSA with 1024 bits/],
    ['RSA 2048, e = 3', rsaCsr(2048, 3).csr, /exponent other than 65537/],
    ['RSA 8192 (noise signature)', hostileRsaCsr(8192, 17), /RSA with 8192 bits/],
    ['RSA 2048 with a 2048-bit exponent', hostileRsaCsr(2048, 2048), /exponent other than 65537/],
    [
      'EC P-521',
      ecCsr('secp521r1'),
      /curve secp521r1, which this fleet does not support: use ECDSA P-256 or P-384/,
    ],
    [
      'Ed25519',
      ed25519Csr(),
      /key type ed25519 is not supported: use ECDSA P-256 or P-384, or RSA 2048, 3072 or 4096 bits/,
    ],
    ['a bad signature', badSignature, /signature does not verify/],
    ['not PEM', 'hello', /not a PEM PKCS#10/],
    [
      'PEM of garbage',
      '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----',
      /DER does not parse/,
    ],
  ];
  return { accepted, refused };
}

/**
 * Issue 17.1: no unbounded crypto before authentication. A CSR's public key is parsed by
 * node:crypto and checked against the fleet's key policy (ECDSA P-256/P-384, RSA 2048/3072/4096
 * with e = 65537) before
 * its signature is looked at: the 16,384-bit modulus + 16,384-bit exponent CSR that froze the
 * cloud for ~376 s (`csr.verify()` in pure JS) is refused at once, and the cloud keeps answering.
 */
describe('hostile CSRs', () => {
  let cloud: Cloud;
  let cases: ReturnType<typeof keyPolicyCases>;
  beforeAll(async () => {
    cases = keyPolicyCases();
    cloud = await startCloud();
  });
  afterAll(() => cloud?.stop());

  it('the oversized CSR is refused in < 100 ms on every unauthenticated route, one by one and 50 at once, while a REST probe keeps answering (p99 < 200 ms)', async () => {
    const hostile = hostileRsaCsr(16_384, 16_384);
    expect(hostile.length).toBeGreaterThan(5000);
    const { code } = await newEnrollmentCode(cloud, 'Till H');
    const pairingsBefore = cloudCount(cloud.dataDir, 'pairings');
    const probe = await startRestProbe(cloud);
    const took: number[] = [];
    for (let i = 0; i < 10; i++) {
      for (const [path, body] of [
        ['/v1/pairings', { csr: hostile }],
        ['/v1/enroll', { method: 'code', code, csr: hostile }],
      ] as const) {
        const t0 = performance.now();
        const r = await cloud.api<Refusal>('POST', path, body, null);
        took.push(performance.now() - t0);
        expect(r.status, path).toBe(400);
        expect(r.body.error.code).toBe('invalid_csr');
        expect(r.body.error.message).toMatch(
          /RSA with 16384 bits: this fleet accepts 2048, 3072 or 4096 bits/,
        );
      }
    }
    // And as a flood: 50 at once.
    const burst = await Promise.all(
      Array.from({ length: 50 }, async () => {
        const t0 = performance.now();
        const r = await cloud.api<Refusal>('POST', '/v1/pairings', { csr: hostile }, null);
        return { status: r.status, ms: performance.now() - t0 };
      }),
    );
    expect(burst.every((b) => b.status === 400)).toBe(true);
    const figures = await probe.stop();
    console.log(
      `oversized CSR: refused in max ${Math.max(...took).toFixed(1)} ms (${took.length} requests one by one), 50 at once all refused within ${Math.max(...burst.map((b) => b.ms)).toFixed(1)} ms; REST probe during: ${JSON.stringify(figures)}`,
    );
    expect(Math.max(...took)).toBeLessThan(100);
    expect(figures.errors).toBe(0);
    expect(figures.count).toBeGreaterThan(10);
    expect(figures.p99).toBeLessThan(200);
    // Nothing stored: no pairing, the code still unused (and it still enrolls a real CSR).
    expect(cloudCount(cloud.dataDir, 'pairings')).toBe(pairingsBefore);
    expect(cloudCount(cloud.dataDir, 'enrollment_codes', 'code = ? AND used_at IS NULL', code)).toBe(1);
    const ok = await cloud.api('POST', '/v1/enroll', { method: 'code', code, csr: rsaCsr().csr }, null);
    expect(ok.status).toBe(200);
  });

  it('accepts exactly the key policy: RSA 2048/3072/4096 with e = 65537; everything else is invalid_csr with the reason', async () => {
    const { accepted, refused } = cases;
    for (const { csr } of accepted) {
      const r = await cloud.api<{ activationCode: string }>('POST', '/v1/pairings', { csr }, null);
      expect(r.status).toBe(201);
    }
    const before = cloudCount(cloud.dataDir, 'pairings');
    for (const [what, csr, reason] of refused) {
      const r = await cloud.api<Refusal>('POST', '/v1/pairings', { csr }, null);
      expect(r.status, what).toBe(400);
      expect(r.body.error.code, what).toBe('invalid_csr');
      expect(r.body.error.message, what).toMatch(reason);
    }
    expect(cloudCount(cloud.dataDir, 'pairings')).toBe(before);
  });
});
