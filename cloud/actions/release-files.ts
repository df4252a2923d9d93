import { createHash, createPublicKey, type KeyObject, verify } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { type Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { downgradeManifest, type ReleaseDescriptor, releaseManifest } from '../../protocol/actions.js';
import { Refusal } from '../../protocol/refusal.js';

/**
 * Release artifacts on disk, never whole in memory: uploads are hashed while they stream to a
 * file (downloads stream from it: cloud/api/file-transfer.ts), and a release is checked against
 * the vendor's release public keys when it is published.
 */

/**
 * Streams an upload to `file`, hashing it on the way, refusing past `maxBytes`; the file is
 * fsynced. Returns its sha256 and size.
 */
export async function receiveToFile(
  req: Readable,
  file: string,
  maxBytes: number,
): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      size += chunk.length;
      if (size > maxBytes) {
        done(new Refusal('body_too_large', `a release may be at most ${maxBytes} bytes`));
        return;
      }
      hash.update(chunk);
      done(null, chunk);
    },
  });
  await pipeline(req, counter, createWriteStream(file, { mode: 0o644, flags: 'wx' }));
  const fh = await open(file, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
  return { sha256: hash.digest('hex'), size };
}

/** Loads the vendor's Ed25519 release public keys (PEM files); throws naming a file that is not one. */
export async function loadReleaseKeys(files: readonly string[]): Promise<KeyObject[]> {
  const keys: KeyObject[] = [];
  for (const f of files) {
    let key: KeyObject;
    try {
      key = createPublicKey(await readFile(f, 'utf8'));
    } catch (err) {
      throw new Error(`release public key ${f} cannot be read: ${(err as Error).message}`);
    }
    if (key.asymmetricKeyType !== 'ed25519')
      throw new Error(`release public key ${f} is ${key.asymmetricKeyType}, not Ed25519`);
    keys.push(key);
  }
  return keys;
}

/** True when one of `keys` signed the release's manifest. */
export function releaseSignatureValid(
  r: ReleaseDescriptor,
  keys: readonly KeyObject[],
  which: 'release' | 'downgrade' = 'release',
): boolean {
  const manifest = Buffer.from(
    which === 'release' ? releaseManifest(r) : downgradeManifest(r, r.downgradeFrom ?? ''),
  );
  const signature = Buffer.from(which === 'release' ? r.signature : (r.downgradeSignature ?? ''), 'base64');
  return keys.some((k) => {
    try {
      return verify(null, manifest, k, signature);
    } catch {
      return false;
    }
  });
}
