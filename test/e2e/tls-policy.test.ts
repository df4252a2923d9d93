import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TLS12_SUITES } from '../../cloud/api/tls-policy.js';
import { type Cloud, startCloud } from '../support/processes.js';

/**
 * Issue 17.5: the cloud offers only forward-secret AEAD suites on TLS 1.2 and 1.3 (Mozilla
 * intermediate). Checked from outside with `openssl s_client`, which would happily negotiate
 * any of the refused ones (its own security level lowered to 0 so that a refusal is the cloud's).
 */
function handshake(port: number, args: string[]): Promise<{ ok: boolean; out: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-brief', ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    p.stderr.on('data', (d: Buffer) => {
      out += d.toString();
    });
    p.stdin.end(); // s_client ends at EOF on its input, right after the handshake
    const timer = setTimeout(() => p.kill('SIGKILL'), 10_000);
    p.on('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'ENOENT' ? new Error('openssl is not installed: apt-get install openssl') : err),
    );
    p.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ ok: code === 0, out });
    });
  });
}

describe('TLS policy', () => {
  let cloud: Cloud;
  beforeAll(async () => {
    cloud = await startCloud();
  });
  afterAll(() => cloud?.stop());

  const refused: [string, string[]][] = [
    ['static RSA, CBC, SHA-1 (AES128-SHA)', ['-tls1_2', '-cipher', 'AES128-SHA:@SECLEVEL=0']],
    ['static RSA, CBC, SHA-1 (AES256-SHA)', ['-tls1_2', '-cipher', 'AES256-SHA:@SECLEVEL=0']],
    ['static RSA, GCM (AES128-GCM-SHA256)', ['-tls1_2', '-cipher', 'AES128-GCM-SHA256:@SECLEVEL=0']],
    ['static RSA, CBC, SHA-256 (AES256-SHA256)', ['-tls1_2', '-cipher', 'AES256-SHA256:@SECLEVEL=0']],
    // The server certificate is ECDSA P-256: the CBC suites it could sign for are ECDHE-ECDSA ones.
    [
      'ECDHE, CBC, SHA-1 (ECDHE-ECDSA-AES128-SHA)',
      ['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-SHA:@SECLEVEL=0'],
    ],
    [
      'ECDHE, CBC, SHA-1 (ECDHE-ECDSA-AES256-SHA)',
      ['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES256-SHA:@SECLEVEL=0'],
    ],
    [
      'ECDHE, CBC, SHA-256 (ECDHE-ECDSA-AES128-SHA256)',
      ['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-SHA256:@SECLEVEL=0'],
    ],
    [
      'ECDHE, CBC, SHA-384 (ECDHE-ECDSA-AES256-SHA384)',
      ['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES256-SHA384:@SECLEVEL=0'],
    ],
    ['TLS 1.1', ['-tls1_1', '-cipher', 'DEFAULT:@SECLEVEL=0']],
    ['TLS 1.0', ['-tls1', '-cipher', 'DEFAULT:@SECLEVEL=0']],
  ];
  for (const [what, args] of refused) {
    it(`refuses ${what}`, async () => {
      const r = await handshake(cloud.port, args);
      expect(r.ok, r.out).toBe(false);
      expect(r.out).not.toMatch(/Cipher is|Ciphersuite:/);
      // The cloud said no (a TLS alert), not the client refusing to try.
      expect(r.out, r.out).toMatch(/alert (handshake failure|protocol version)/);
    });
  }

  it('connects with each offered TLS 1.2 suite the P-256 certificate allows (ECDHE-ECDSA, AEAD) and with TLS 1.3', async () => {
    const ecdsa = TLS12_SUITES.filter((s) => s.startsWith('ECDHE-ECDSA-'));
    expect(ecdsa).toEqual([
      'ECDHE-ECDSA-AES128-GCM-SHA256',
      'ECDHE-ECDSA-AES256-GCM-SHA384',
      'ECDHE-ECDSA-CHACHA20-POLY1305',
    ]);
    for (const suite of ecdsa) {
      const r = await handshake(cloud.port, ['-tls1_2', '-cipher', suite]);
      expect(r.ok, r.out).toBe(true);
      expect(r.out).toMatch(new RegExp(`Ciphersuite: ${suite}`));
      expect(r.out).toMatch(/Protocol version: TLSv1\.2/);
    }
    for (const suite of [
      'TLS_AES_128_GCM_SHA256',
      'TLS_AES_256_GCM_SHA384',
      'TLS_CHACHA20_POLY1305_SHA256',
    ]) {
      const r = await handshake(cloud.port, ['-tls1_3', '-ciphersuites', suite]);
      expect(r.ok, r.out).toBe(true);
      expect(r.out).toMatch(new RegExp(`Ciphersuite: ${suite}`));
      expect(r.out).toMatch(/Protocol version: TLSv1\.3/);
    }
  });
});
