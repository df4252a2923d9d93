import { execFile } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  lchownSync,
  mkdirSync,
  readdirSync as readdir,
  readFileSync,
  statSync as statOf,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  installRelease,
  newReleaseKey,
  POSAGENT_INSTALLER,
  packRelease,
  type ReleaseKey,
  type SignedRelease,
  signRelease,
} from '../../harness/releases.js';
import { tempDir } from '../support/processes.js';

/**
 * Issue 16: the privileged installer (the shipped single-file bundle) against an agent that
 * tries to make root read, write or install what it should not. Every refusal answers in
 * result.json (when there is a safe place for it) and installs nothing.
 */
function installer(step: string, installDir: string, stateDir: string, keyFile: string) {
  return new Promise<{ code: number; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      [
        POSAGENT_INSTALLER,
        step,
        '--install-dir',
        installDir,
        '--state-dir',
        stateDir,
        '--release-key',
        keyFile,
      ],
      (err, _stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr }),
    );
  });
}

const NOBODY = 65534;
function chownR(path: string, uid: number): void {
  lchownSync(path, uid, uid);
  if (statOf(path).isDirectory()) for (const e of readdir(path)) chownR(join(path, e), uid);
}

describe('the privileged installer refuses what a compromised agent could plant', () => {
  let key: ReleaseKey;
  const packs = tempDir('installer-packs');
  const signed = new Map<string, SignedRelease & { tarball: string }>();

  beforeAll(async () => {
    key = await newReleaseKey();
    for (const v of ['1.0.0', '1.1.0', '0.9.0']) {
      const tarball = await packRelease(v, packs);
      signed.set(v, { ...(await signRelease(tarball, key)), tarball });
    }
  }, 120_000);

  const setup = async (version: string) => {
    const installDir = tempDir('installer-opt');
    const stateDir = tempDir('installer-state');
    await installRelease(signed.get('1.0.0')!.tarball, installDir, '1.0.0');
    chmodSync(installDir, 0o755); // the service user runs the new release's --version from here
    const update = join(stateDir, 'update');
    mkdirSync(update, { mode: 0o700 });
    const s = signed.get(version)!;
    copyFileSync(s.tarball, join(update, `${version}.tgz`));
    const { tarball: _t, ...release } = s;
    writeFileSync(
      join(update, 'request.json'),
      JSON.stringify({ requestId: 'req-0000001', actionId: 'act_1', release, healthWindowSec: 30 }),
    );
    // The agent's state is the service user's (nobody here), as systemd's StateDirectory= makes it.
    chownR(stateDir, NOBODY);
    return { installDir, stateDir, update };
  };
  /** The installer's answer: in the release tree (root's), never in the agent's directory. */
  const result = (installDir: string) =>
    JSON.parse(readFileSync(join(installDir, 'update/result.json'), 'utf8')) as {
      ok: boolean;
      error?: string;
    };

  it('stages a good release: root-owned, beside the running one', async () => {
    const { installDir, stateDir } = await setup('1.1.0');
    const r = await installer('stage', installDir, stateDir, key.publicKeyFile);
    expect(r.code, r.stderr).toBe(0);
    expect(result(installDir)).toMatchObject({ step: 'stage', ok: true, version: '1.1.0' });
    expect(existsSync(join(installDir, 'releases/1.1.0/dist/bin/posagent.js'))).toBe(true);
  });

  it('a request that is a link to a secret: refused, the secret never read back', async () => {
    const { installDir, stateDir, update } = await setup('1.1.0');
    const secret = join(tempDir('secret'), 'shadow');
    writeFileSync(secret, 'root:$y$j9T$secret-hash:19000:0:99999:7:::\n');
    const { rmSync } = await import('node:fs');
    rmSync(join(update, 'request.json'));
    symlinkSync(secret, join(update, 'request.json'));
    const r = await installer('stage', installDir, stateDir, key.publicKeyFile);
    expect(r.code).toBe(1);
    expect(result(installDir).error).toMatch(/request\.json cannot be opened \(ELOOP\): not a plain file/);
    expect(readFileSync(join(installDir, 'update/result.json'), 'utf8') + r.stderr).not.toContain(
      'secret-hash',
    );
    expect(existsSync(join(installDir, 'releases/1.1.0'))).toBe(false);
  });

  it("an update dir that is a link to root's files: refused (not the service user's), nothing written there", async () => {
    const { installDir, stateDir, update } = await setup('1.1.0');
    const elsewhere = tempDir('elsewhere'); // root's
    const { renameSync, readdirSync } = await import('node:fs');
    copyFileSync(join(update, 'request.json'), join(elsewhere, 'request.json'));
    renameSync(update, join(stateDir, 'real-update'));
    symlinkSync(elsewhere, update);
    const r = await installer('stage', installDir, stateDir, key.publicKeyFile);
    expect(r.code).toBe(1);
    expect(result(installDir).error).toMatch(/request\.json is not owned by the service user/);
    expect(readdirSync(elsewhere)).toEqual(['request.json']);
  });

  it("an artifact changed after the agent checked it: refused by the installer's own check, nothing unpacked", async () => {
    const { installDir, stateDir, update } = await setup('1.1.0');
    const file = join(update, '1.1.0.tgz');
    const bytes = readFileSync(file);
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 50) ^ 0xff, bytes.length - 50);
    writeFileSync(file, bytes);
    chownSync(file, NOBODY, NOBODY);
    const r = await installer('stage', installDir, stateDir, key.publicKeyFile);
    expect(r.code).toBe(1);
    expect(result(installDir).error).toMatch(/artifact sha256 [0-9a-f]{64} does not match/);
    expect(existsSync(join(installDir, 'releases/1.1.0'))).toBe(false);
  });

  it("a downgrade without the release key's downgrade signature: refused (the agent's word is not enough)", async () => {
    const { installDir, stateDir } = await setup('0.9.0');
    const r = await installer('stage', installDir, stateDir, key.publicKeyFile);
    expect(r.code).toBe(1);
    expect(result(installDir).error).toMatch(
      /downgrade from 1\.0\.0 to 0\.9\.0 refused: the release is not signed for downgrades/,
    );
  });

  it('activate without a staged release, and an unknown step: refused; current untouched', async () => {
    const { installDir, stateDir } = await setup('1.1.0');
    const r = await installer('activate', installDir, stateDir, key.publicKeyFile);
    expect(r.code).toBe(1);
    expect(result(installDir).error).toMatch(/no release is staged/);
    const { readlinkSync } = await import('node:fs');
    expect(readlinkSync(join(installDir, 'current'))).toBe('releases/1.0.0');
    const bad = await installer('rm-rf', installDir, stateDir, key.publicKeyFile);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/unknown step "rm-rf"/);
  });

  it('activate switches only to what stage verified: a forged request is not read, nothing switches', async () => {
    const { installDir, stateDir, update } = await setup('1.1.0');
    // A compromised agent asks to "activate" an old release it never staged, with a forged descriptor.
    writeFileSync(
      join(update, 'request.json'),
      JSON.stringify({
        requestId: 'forged-0001',
        actionId: 'evil',
        release: { version: '0.9.0', sha256: '0'.repeat(64), size: 1, signature: 'AAAA' },
        healthWindowSec: 30,
      }),
    );
    const r = await installer('activate', installDir, stateDir, key.publicKeyFile);
    expect(r.code).toBe(1);
    expect(result(installDir).error).toMatch(/no release is staged/);
    const { readlinkSync } = await import('node:fs');
    expect(readlinkSync(join(installDir, 'current'))).toBe('releases/1.0.0');
  });

  it('a huge request size, or a bad signature, is refused before the download is read or copied', async () => {
    const { installDir, stateDir, update } = await setup('1.1.0');
    const req = JSON.parse(readFileSync(join(update, 'request.json'), 'utf8')) as {
      release: { size: number; signature: string };
    };
    const { truncateSync, readdirSync } = await import('node:fs');
    truncateSync(join(update, '1.1.0.tgz'), 1_000_000_000); // sparse: costs nothing here, would cost root a GB
    writeFileSync(
      join(update, 'request.json'),
      JSON.stringify({ ...req, release: { ...req.release, size: 1_000_000_000 } }),
    );
    const started = Date.now();
    const huge = await installer('stage', installDir, stateDir, key.publicKeyFile);
    expect(huge.code).toBe(1);
    expect(result(installDir).error).toMatch(/install request is invalid: \/release\/size.*268435456/);
    writeFileSync(
      join(update, 'request.json'),
      JSON.stringify({ ...req, release: { ...req.release, size: 100_000_000, signature: 'A'.repeat(88) } }),
    );
    const forged = await installer('stage', installDir, stateDir, key.publicKeyFile);
    expect(forged.code).toBe(1);
    expect(result(installDir).error).toMatch(/signature of 1\.1\.0 is not valid for the pinned release key/);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(readdirSync(join(installDir, 'releases')).sort()).toEqual(['1.0.0']);
  });

  it("root writes nothing into the agent's directory: its answers are in the release tree", async () => {
    const { installDir, stateDir, update } = await setup('1.1.0');
    const { readdirSync, statSync } = await import('node:fs');
    const before = readdirSync(update).sort();
    await installer('stage', installDir, stateDir, key.publicKeyFile);
    expect(readdirSync(update).sort()).toEqual(before);
    expect(statSync(join(installDir, 'update/result.json')).mode & 0o777).toBe(0o644);
  });

  it('the boot guard is not held up by a FIFO planted as the commit marker, and still counts the start', async () => {
    const { installDir, stateDir, update } = await setup('1.1.0');
    expect((await installer('stage', installDir, stateDir, key.publicKeyFile)).code).toBe(0);
    expect((await installer('activate', installDir, stateDir, key.publicKeyFile)).code).toBe(0);
    await new Promise<void>((resolve, reject) =>
      execFile('mkfifo', [join(update, 'committed.json')], (err) => (err ? reject(err) : resolve())),
    );
    const started = Date.now();
    const g = await installer('guard', installDir, stateDir, key.publicKeyFile);
    expect(g.code).toBe(0);
    expect(Date.now() - started).toBeLessThan(10_000);
    const trial = JSON.parse(readFileSync(join(installDir, 'trial.json'), 'utf8')) as { starts: number };
    expect(trial.starts).toBe(1);
  });
});
