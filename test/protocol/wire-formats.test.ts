import { execFileSync } from 'node:child_process';
import { createDecipheriv, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { releaseManifest } from '../../protocol/actions.js';
import { sealCard } from '../../protocol/card-envelope.js';

/**
 * Issue 18.8: what docs/protocol.md says byte for byte holds — the card envelope opened the way the
 * document tells a cloud to open it, with OpenSSL's own RSA-OAEP (SHA-256 for OAEP and MGF1, no
 * label) and a plain AES-256-GCM decipher; the release manifest's exact bytes.
 */
describe('wire formats as docs/protocol.md states them', () => {
  it('the card envelope: base64 fields, 12-byte IV, 16-byte tag, OAEP-SHA-256 with MGF1-SHA-256, the JSON plaintext', () => {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', {
      modulusLength: 2048,
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    });
    const card = { pan: '4111111111111111', expiry: '12/29', holder: 'A CARDHOLDER' };
    const e = sealCard(card, publicKey);
    expect(e.alg).toBe('RSA-OAEP-256+A256GCM');
    const b64 = /^[A-Za-z0-9+/]+={0,2}$/;
    for (const f of [e.ek, e.iv, e.ct, e.tag]) expect(f).toMatch(b64);
    expect(Buffer.from(e.iv, 'base64')).toHaveLength(12);
    expect(Buffer.from(e.tag, 'base64')).toHaveLength(16);
    expect(Buffer.from(e.ek, 'base64')).toHaveLength(256); // the modulus of RSA-2048
    expect(e.ek).toHaveLength(344);
    // OpenSSL, told exactly what the document says, unwraps the key...
    const dir = mkdtempSync(join(tmpdir(), 'posagent-envelope-'));
    writeFileSync(join(dir, 'key.pem'), privateKey);
    writeFileSync(join(dir, 'ek.bin'), Buffer.from(e.ek, 'base64'));
    const openssl = (mgf1: string) =>
      execFileSync('openssl', [
        'pkeyutl',
        '-decrypt',
        '-inkey',
        join(dir, 'key.pem'),
        '-in',
        join(dir, 'ek.bin'),
        '-pkeyopt',
        'rsa_padding_mode:oaep',
        '-pkeyopt',
        'rsa_oaep_md:sha256',
        '-pkeyopt',
        `rsa_mgf1_md:${mgf1}`,
      ]);
    const key = openssl('sha256');
    expect(key).toHaveLength(32);
    expect(() => openssl('sha1')).toThrow(); // MGF1 is SHA-256 too, not the SHA-1 default
    // ...and AES-256-GCM with that IV and tag, no AAD, gives the card as compact JSON.
    const d = createDecipheriv('aes-256-gcm', key, Buffer.from(e.iv, 'base64'));
    d.setAuthTag(Buffer.from(e.tag, 'base64'));
    const clear = Buffer.concat([d.update(Buffer.from(e.ct, 'base64')), d.final()]).toString('utf8');
    expect(clear).toBe(JSON.stringify(card));
    expect(Buffer.from(e.ct, 'base64')).toHaveLength(Buffer.byteLength(clear));
  });

  it('the release manifest: four LF-ended lines, the last one too', () => {
    const sha256 = 'ab'.repeat(32);
    expect(Buffer.from(releaseManifest({ version: '1.2.0', sha256, size: 123456 }))).toEqual(
      Buffer.from(`posagent-release\nversion 1.2.0\nsha256 ${sha256}\nsize 123456\n`, 'ascii'),
    );
  });
});
