import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
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
} from '../../demo/releases.js';
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
    const update = join(stateDir, 'update');
    mkdirSync(update, { mode: 0o700 });
    const s = signed.get(version)!;
    copyFileSync(s.tarball, join(update, `${version}.tgz`));
    const { tarball: _t, ...release } = s;
    writeFileSync(
      join(update, 'request.json'),
      JSON.stringify({ actionId: 'act_1', release, healthWindowSec: 30 }),
    );
    return { installDir, stateDir, update };
  };
  const result = (update: string) =>
    JSON.parse(readFileSync(join(update, 'result.json'), 'utf8')) as { ok: boolean; error?: string };

  it('stages a good release: root-owned, beside the running one', async () => {
    const { installDir, stateDir, update } = await setup('1.1.0');
    const r = await installer('stage', installDir, stateDir, key.publicKeyFile);
    expect(r.code, r.stderr).toBe(0);
    expect(result(update)).toMatchObject({ step: 'stage', ok: true, version: '1.1.0' });
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
    expect(result(update).error).toMatch(/request\.json cannot be opened \(ELOOP\): not a plain file/);
    expect(readFileSync(join(update, 'result.json'), 'utf8') + r.stderr).not.toContain('secret-hash');
    expect(existsSync(join(installDir, 'releases/1.1.0'))).toBe(false);
  });

  it('an update dir that is a link elsewhere: refused, nothing written there', async () => {
    const { installDir, stateDir, update } = await setup('1.1.0');
    const elsewhere = tempDir('elsewhere');
    const { renameSync, readdirSync } = await import('node:fs');
    renameSync(update, join(stateDir, 'real-update'));
    symlinkSync(elsewhere, update);
    const r = await installer('stage', installDir, stateDir, key.publicKeyFile);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/is not a directory \(a link or nothing\): refused/);
    expect(readdirSync(elsewhere)).toEqual([]);
  });

  it("an artifact changed after the agent checked it: refused by the installer's own check, nothing unpacked", async () => {
    const { installDir, stateDir, update } = await setup('1.1.0');
    const file = join(update, '1.1.0.tgz');
    const bytes = readFileSync(file);
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 50) ^ 0xff, bytes.length - 50);
    writeFileSync(file, bytes);
    const r = await installer('stage', installDir, stateDir, key.publicKeyFile);
    expect(r.code).toBe(1);
    expect(result(update).error).toMatch(/artifact sha256 [0-9a-f]{64} does not match/);
    expect(existsSync(join(installDir, 'releases/1.1.0'))).toBe(false);
  });

  it("a downgrade without the release key's downgrade signature: refused (the agent's word is not enough)", async () => {
    const { installDir, stateDir, update } = await setup('0.9.0');
    const r = await installer('stage', installDir, stateDir, key.publicKeyFile);
    expect(r.code).toBe(1);
    expect(result(update).error).toMatch(
      /downgrade from 1\.0\.0 to 0\.9\.0 refused: the release is not signed for downgrades/,
    );
  });

  it('activate without a staged release, and an unknown step: refused; current untouched', async () => {
    const { installDir, stateDir, update } = await setup('1.1.0');
    const r = await installer('activate', installDir, stateDir, key.publicKeyFile);
    expect(r.code).toBe(1);
    expect(result(update).error).toMatch(/release 1\.1\.0 is not staged/);
    const { readlinkSync } = await import('node:fs');
    expect(readlinkSync(join(installDir, 'current'))).toBe('releases/1.0.0');
    const bad = await installer('rm-rf', installDir, stateDir, key.publicKeyFile);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/unknown step "rm-rf"/);
  });
});
