import { createHash, generateKeyPair, sign } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { downgradeManifest, type ReleaseDescriptor, releaseManifest } from '../../protocol/actions.js';

/**
 * The vendor's side of a release: an Ed25519 release key (kept off the cloud, unlike the fleet
 * CA), the signature over the release manifest, and the version read from the tarball itself.
 */
export async function newReleaseKeyPair(): Promise<{ privateKeyPem: string; publicKeyPem: string }> {
  const { privateKey, publicKey } = await promisify(generateKeyPair)('ed25519');
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

export async function sha256OfFile(file: string): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return { sha256: hash.digest('hex'), size: (await stat(file)).size };
}

/** The `version` of `package/package.json` inside an `npm pack` tarball; throws when there is none. */
export async function packageVersionOf(tarball: string): Promise<string> {
  const tar = await import('tar');
  const dir = await mkdtemp(join(tmpdir(), 'posagent-release-'));
  try {
    await tar.x({ file: tarball, cwd: dir, filter: (p) => p === 'package/package.json' });
    const pkg = JSON.parse(await readFile(join(dir, 'package/package.json'), 'utf8')) as {
      version?: unknown;
    };
    if (typeof pkg.version !== 'string') throw new Error('package.json has no version');
    return pkg.version;
  } catch (err) {
    throw new Error(
      `${tarball} is not an npm pack tarball with a versioned package.json: ${(err as Error).message}`,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Signs a release tarball with the release key: everything an agent needs to check it; with
 * `allowDowngradeFrom`, also the permission to install it over newer versions up to that one.
 */
export async function signRelease(
  tarball: string,
  privateKeyPem: string,
  opts: { allowDowngradeFrom?: string } = {},
): Promise<ReleaseDescriptor> {
  const version = await packageVersionOf(tarball);
  const { sha256, size } = await sha256OfFile(tarball);
  const sig = (text: string) => sign(null, Buffer.from(text), privateKeyPem).toString('base64');
  return {
    version,
    sha256,
    size,
    signature: sig(releaseManifest({ version, sha256, size })),
    ...(opts.allowDowngradeFrom
      ? {
          downgradeFrom: opts.allowDowngradeFrom,
          downgradeSignature: sig(downgradeManifest({ version, sha256, size }, opts.allowDowngradeFrom)),
        }
      : {}),
  };
}
