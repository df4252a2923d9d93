import { execFile } from 'node:child_process';
import { createHash, createPublicKey, verify } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  compareVersions,
  downgradeManifest,
  type ReleaseDescriptor,
  releaseManifest,
} from '../protocol/actions.js';

/**
 * Checks on a release artifact, shared by the agent (before it asks for an install) and the
 * privileged installer (which checks again, with the root-owned key, before anything is unpacked):
 * size, sha256, the Ed25519 signature over the manifest, and the version policy (a downgrade only
 * with the release key's own downgrade signature).
 */
export class UpdateFailure extends Error {
  override readonly name = 'UpdateFailure';
}

const run = promisify(execFile);

/** Whether `signatureB64` is the release key's Ed25519 signature over `text`. */
export function signedBy(text: string, signatureB64: string, publicKeyPem: string): boolean {
  try {
    return verify(
      null,
      Buffer.from(text),
      createPublicKey(publicKeyPem),
      Buffer.from(signatureB64, 'base64'),
    );
  } catch {
    return false;
  }
}

/** Checks size, sha256 and the Ed25519 signature over the release manifest; throws UpdateFailure naming what is wrong. */
export async function verifyArtifact(
  file: string,
  release: ReleaseDescriptor,
  publicKeyPem: string,
): Promise<void> {
  const { size } = await stat(file);
  if (size !== release.size)
    throw new UpdateFailure(`artifact is ${size} bytes, the release says ${release.size}: refused`);
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  const sha256 = hash.digest('hex');
  if (sha256 !== release.sha256)
    throw new UpdateFailure(
      `artifact sha256 ${sha256} does not match the release's ${release.sha256}: refused`,
    );
  if (!signedBy(releaseManifest(release), release.signature, publicKeyPem))
    throw new UpdateFailure(
      `the signature of ${release.version} is not valid for the pinned release key: refused`,
    );
}

/**
 * A release may replace `running` if it is newer, or — older — if the release key signed its
 * downgrade manifest. Throws UpdateFailure otherwise. Returns the direction.
 */
export function checkVersionPolicy(
  running: string,
  release: ReleaseDescriptor,
  publicKeyPem: string,
): 'upgrade' | 'downgrade' | 'same' {
  const order = compareVersions(release.version, running);
  if (order > 0) return 'upgrade';
  if (order === 0) return 'same';
  if (!release.downgradeSignature)
    throw new UpdateFailure(
      `downgrade from ${running} to ${release.version} refused: the release is not signed for downgrades (posagent-cloud release-sign --allow-downgrade)`,
    );
  if (!signedBy(downgradeManifest(release), release.downgradeSignature, publicKeyPem))
    throw new UpdateFailure(
      `downgrade from ${running} to ${release.version} refused: its downgrade signature is not valid for the pinned release key`,
    );
  return 'downgrade';
}

/**
 * What an unpacked release answers to `--version` ('' when it does not run), run as `as` (the
 * service user) when given: the installer never runs new code as root.
 */
export async function versionOf(
  dir: string,
  nodePath: string,
  as?: { uid: number; gid: number },
): Promise<string> {
  try {
    const { stdout } = await run(nodePath, [join(dir, 'dist/bin/posagent.js'), '--version'], {
      timeout: 30_000,
      env: { PATH: '/usr/bin:/bin' },
      ...(as && process.getuid?.() === 0 ? { uid: as.uid, gid: as.gid } : {}),
    });
    return stdout.trim();
  } catch {
    return '';
  }
}
