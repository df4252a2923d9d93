import { execFile } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localApiRequest } from '../../agent/local-api/local-api-client.js';
import {
  installedVersion,
  installRelease,
  newReleaseKey,
  packRelease,
  publishRelease,
  type ReleaseKey,
  type SignedRelease,
  type Supervised,
  signRelease,
  superviseAgent,
} from '../../harness/releases.js';
import {
  type Cloud,
  type CloudAction,
  enrollAgent,
  getAction,
  queueAction,
  startCloud,
  tempDir,
  waitForAction,
  waitForLink,
} from '../support/processes.js';
import { waitFor } from '../support/wait-for.js';

/**
 * Issue 7: software updates to real builds of this package (`npm pack` under other versions),
 * installed side by side with a `current` link, run by a supervisor that restarts the agent the
 * way systemd does. Each update goes through the real cloud, download, verification and restart.
 */
describe('software update', () => {
  let cloud: Cloud;
  let key: ReleaseKey;
  /** Another vendor key the cloud also accepts at publish, which the terminal does not pin. */
  let otherKey: ReleaseKey;
  let a: Awaited<ReturnType<typeof enrollAgent>>;
  let agent: Supervised;
  const installDir = tempDir('install');
  const packs = tempDir('packs');
  const tarballs = new Map<string, string>();
  const signed = new Map<string, SignedRelease>();
  const socket = () => `${a.dirs.runtimeDir}/api.sock`;

  const update = async (version: string) =>
    (await queueAction(cloud, a.terminalId, { type: 'update', params: { version } })).id;
  const until = (id: string, ok: (x: CloudAction) => boolean, what: string, timeoutMs = 30_000) =>
    waitForAction(cloud, a.terminalId, id, ok, what, timeoutMs);
  const publish = async (version: string, k = key) => {
    const s = await signRelease(tarballs.get(version)!, k);
    signed.set(version, s);
    const r = await publishRelease(cloud, tarballs.get(version)!, s);
    expect(r.status).toBe(201);
    return s;
  };
  // The unit's own start limit (systemd/posagent.service): StartLimitBurst=10 in 600 s.
  const startSupervised = (env: Record<string, string> = {}) =>
    superviseAgent(installDir, a.dirs, key.publicKeyFile, env);
  const runningVersion = async () =>
    (await localApiRequest<{ softwareVersion: string }>(socket(), 'GET', '/v1/status')).body.softwareVersion;

  beforeAll(async () => {
    key = await newReleaseKey();
    otherKey = await newReleaseKey();
    cloud = await startCloud([
      '--release-public-key',
      key.publicKeyFile,
      '--release-public-key',
      otherKey.publicKeyFile,
    ]);
    const builds: [string, ((stage: string) => Promise<void>) | undefined][] = [
      ['1.0.0', undefined],
      ['1.1.0', undefined],
      // A build that runs (`--version` answers) but can never reach the cloud: wrong subprotocol.
      [
        '1.2.0',
        async (stage) => {
          const dir = join(stage, 'dist/bin/chunks');
          for (const f of await readdir(dir)) {
            const text = await readFile(join(dir, f), 'utf8');
            if (text.includes('"posagent.v1"'))
              await writeFile(join(dir, f), text.replaceAll('"posagent.v1"', '"posagent.v0"'));
          }
        },
      ],
      ['1.3.0', undefined],
      ['1.3.1', undefined],
      ['1.3.2', undefined],
      ['1.4.0', undefined],
      ['1.5.0', undefined],
      // A build that answers `--version` but exits 1 at every start of the daemon.
      [
        '1.6.0',
        async (stage) => {
          const bin = join(stage, 'dist/bin/posagent.js');
          const [shebang, ...rest] = (await readFile(bin, 'utf8')).split('\n');
          await writeFile(
            bin,
            [
              shebang,
              "if (process.argv[2] === 'run') { console.error('1.6.0: cannot start'); process.exit(1); }",
              ...rest,
            ].join('\n'),
          );
        },
      ],
    ];
    for (const [version, patch] of builds) tarballs.set(version, await packRelease(version, packs, patch));
    await installRelease(tarballs.get('1.0.0')!, installDir, '1.0.0');
    a = await enrollAgent(cloud);
    agent = startSupervised();
    await waitForLink(a.dirs);
    expect(await runningVersion()).toBe('1.0.0');
  }, 120_000);

  afterAll(async () => {
    await agent?.stop();
    await cloud?.stop();
  });

  it('a tampered artifact, a wrong sha256, a wrong signature: refused before unpacking, running version untouched', async () => {
    const artifact = (v: string) => join(cloud.dataDir, 'releases', `${v}.tgz`);
    // Tampered: 5 MB appended to the artifact on the cloud's disk after it was published (a
    // compromised cloud could send an endless stream): the agent takes no more than the signed size.
    await publish('1.3.0');
    writeFileSync(
      artifact('1.3.0'),
      Buffer.concat([readFileSync(artifact('1.3.0')), Buffer.alloc(5 * 1024 * 1024, 1)]),
    );
    // Wrong sha256: same length, one byte changed.
    await publish('1.3.1');
    const bytes = readFileSync(artifact('1.3.1'));
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 100) ^ 0xff, bytes.length - 100);
    writeFileSync(artifact('1.3.1'), bytes);
    // Wrong signature: signed with a key the cloud knows but the terminal does not pin.
    await publish('1.3.2', otherKey);

    const cases: [string, RegExp, string][] = [
      ['1.3.0', /the cloud sent more than the \d+ bytes this download may have: refused/, 'downloading'],
      [
        '1.3.1',
        /artifact sha256 [0-9a-f]{64} does not match the release's [0-9a-f]{64}: refused/,
        'verifying',
      ],
      ['1.3.2', /signature of 1\.3\.2 is not valid for the pinned release key: refused/, 'verifying'],
    ];
    for (const [version, reason, step] of cases) {
      const id = await update(version);
      const failed = await until(id, (x) => x.status === 'failed', `the update to ${version} refused`);
      expect(failed.reason).toMatch(reason);
      expect(failed.step).toBe(step);
      expect(existsSync(join(installDir, 'releases', version))).toBe(false);
      const partial = join(a.dirs.stateDir, 'update', `${version}.tgz`);
      const signedSize = signed.get(version)!.size;
      if (existsSync(partial)) expect(statSync(partial).size).toBeLessThanOrEqual(signedSize + 64 * 1024);
    }
    expect(await installedVersion(installDir)).toBe('1.0.0');
    expect(await runningVersion()).toBe('1.0.0');
    expect(agent.starts()).toBe(1);
  });

  it("publishing refuses a release whose version is not the tarball's, or without a signature; nothing is listed", async () => {
    const before = (await cloud.api<{ data: unknown[] }>('GET', '/v1/releases')).body.data.length;
    const s = await signRelease(tarballs.get('1.4.0')!, key);
    const mislabelled = await publishRelease(cloud, tarballs.get('1.4.0')!, { ...s, version: '9.0.0' });
    expect(mislabelled.status).toBe(422);
    expect(mislabelled.body).toMatchObject({
      error: { code: 'release_version_mismatch', message: 'the tarball is version 1.4.0, not 9.0.0' },
    });
    const unsigned = await publishRelease(cloud, tarballs.get('1.4.0')!, { ...s, signature: '' });
    expect(unsigned.status).toBe(400);
    expect((unsigned.body as { error: { message: string } }).error.message).toMatch(
      /Posagent-Release-Signature/,
    );
    expect((await cloud.api<{ data: unknown[] }>('GET', '/v1/releases')).body.data).toHaveLength(before);
  });

  it('a held busy lease defers the update; released, it installs and runs the new version', async () => {
    await publish('1.1.0');
    const lease = await localApiRequest<{ leaseId: string }>(socket(), 'POST', '/v1/busy', {
      ttlSeconds: 600,
      reason: 'card in reader',
    });
    const id = await update('1.1.0');
    const waiting = await until(id, (x) => x.step === 'waiting', 'the update waiting for the lease');
    expect(waiting.status).toBe('processing');
    expect(waiting.reason).toMatch(/busy lease: card in reader/);
    // Downloaded, verified and unpacked beside the running version; not switched.
    expect(existsSync(join(installDir, 'releases/1.1.0/dist/bin/posagent.js'))).toBe(true);
    expect(readlinkSync(join(installDir, 'current'))).toBe('releases/1.0.0');
    expect(agent.starts()).toBe(1);

    await localApiRequest(socket(), 'DELETE', `/v1/busy/${lease.body.leaseId}`);
    const done = await until(id, (x) => x.status === 'completed', 'the update committed');
    expect(done.step).toBe('committed');
    expect(await installedVersion(installDir)).toBe('1.1.0');
    expect(await runningVersion()).toBe('1.1.0');
    expect(agent.starts()).toBe(2);
    const terminal = await cloud.api<{ softwareVersion: string }>('GET', `/v1/terminals/${a.terminalId}`);
    expect(terminal.body.softwareVersion).toBe('1.1.0');
    // The previous release is kept for rollback; older ones and downloads are pruned.
    expect(readdirSync(join(installDir, 'releases')).sort()).toEqual(['1.0.0', '1.1.0']);
  });

  it('a release that fails its health window is rolled back and reported failed', async () => {
    await publish('1.2.0');
    const id = await update('1.2.0');
    const failed = await until(id, (x) => x.status === 'failed', 'the bad release reported failed', 60_000);
    expect(failed.reason).toMatch(/1\.2\.0 did not reach the cloud within its health window/);
    await waitFor(async () => (await runningVersion().catch(() => null)) === '1.1.0', 'back on 1.1.0');
    expect(await installedVersion(installDir)).toBe('1.1.0');
    expect(agent.starts()).toBe(4); // 1.1.0 → 1.2.0 (trial) → 1.1.0
    await waitFor(() => !existsSync(join(installDir, 'releases/1.2.0')), 'the bad release removed');
    await waitForLink(a.dirs);
  });

  it('a signed release that exits 1 at every start: the boot guard rolls it back within the start limit; the old version reports it failed', async () => {
    await publish('1.6.0');
    const startsBefore = agent.starts();
    const id = await update('1.6.0');
    const failed = await until(
      id,
      (x) => x.status === 'failed',
      'the unstartable release reported failed',
      60_000,
    );
    expect(failed.reason).toMatch(
      /version 1\.6\.0 failed to start: 3 starts without reaching the cloud \(last start ended: exit-code, exited=1\); the boot guard rolled back to 1\.1\.0/,
    );
    expect(failed.step).toBe('rolled_back');
    await waitFor(async () => (await runningVersion().catch(() => null)) === '1.1.0', 'back on 1.1.0');
    expect(readlinkSync(join(installDir, 'current'))).toBe('releases/1.1.0');
    expect(existsSync(join(installDir, 'releases/1.6.0'))).toBe(false);
    expect(existsSync(join(installDir, 'trial.json'))).toBe(false);
    // 1.6.0 started three times, then the guard's rollback start of 1.1.0; systemd never gave up.
    expect(agent.starts() - startsBefore).toBe(4);
    expect(agent.gaveUp()).toBe(false);
    expect(agent.output()).toMatch(/1\.6\.0: cannot start/);
    await waitForLink(a.dirs);
  });

  it('a downgrade needs the release key: the cloud asking is not enough; the signed one installs', async () => {
    await publish('1.0.0');
    const unsigned = await queueAction(cloud, a.terminalId, {
      type: 'update',
      params: { version: '1.0.0', allowDowngrade: true },
    });
    const refused = await until(unsigned.id, (x) => x.status === 'failed', 'the unsigned downgrade refused');
    expect(refused.reason).toMatch(
      /downgrade from 1\.1\.0 to 1\.0\.0 refused: the release is not signed for downgrades/,
    );
    expect(await runningVersion()).toBe('1.1.0');
    const putDowngrade = (signed: SignedRelease) =>
      cloud.api<{ error?: { code: string } }>('PUT', '/v1/releases/1.0.0/downgrade-signature', {
        signature: signed.downgradeSignature,
        from: signed.downgradeFrom,
      });
    const downgradeTo100 = () =>
      queueAction(cloud, a.terminalId, {
        type: 'update',
        params: { version: '1.0.0', allowDowngrade: true },
      });
    // A downgrade signature from a key the cloud does not know: refused at the cloud.
    const stranger = await signRelease(tarballs.get('1.0.0')!, await newReleaseKey(), {
      allowDowngradeFrom: '1.1.0',
    });
    const unknownKey = await putDowngrade(stranger);
    expect(unknownKey.status).toBe(422);
    expect(unknownKey.body.error?.code).toBe('release_signature_invalid');
    // One the cloud takes (its second key) but the terminal does not pin: refused on the terminal.
    expect(
      (
        await putDowngrade(
          await signRelease(tarballs.get('1.0.0')!, otherKey, { allowDowngradeFrom: '1.1.0' }),
        )
      ).status,
    ).toBe(200);
    const forged = await until(
      (await downgradeTo100()).id,
      (x) => x.status === 'failed',
      'the forged downgrade refused',
    );
    expect(forged.reason).toMatch(/downgrade signature is not valid for the pinned release key/);
    // The release key's own, but only from versions up to 1.0.5: this terminal runs 1.1.0, refused.
    expect(
      (await putDowngrade(await signRelease(tarballs.get('1.0.0')!, key, { allowDowngradeFrom: '1.0.5' })))
        .status,
    ).toBe(200);
    const tooNew = await until(
      (await downgradeTo100()).id,
      (x) => x.status === 'failed',
      'a downgrade past its ceiling refused',
    );
    expect(tooNew.reason).toMatch(/refused: the release key allows it only from 1\.0\.5 and older/);
    // The release key's own, from 1.1.0: installed and committed.
    expect(
      (await putDowngrade(await signRelease(tarballs.get('1.0.0')!, key, { allowDowngradeFrom: '1.1.0' })))
        .status,
    ).toBe(200);
    const signed = await downgradeTo100();
    const done = await until(
      signed.id,
      (x) => x.status === 'completed',
      'the signed downgrade installed',
      60_000,
    );
    expect(done.step).toBe('committed');
    expect(await runningVersion()).toBe('1.0.0');
  });

  it('a power cut after unpacking resumes the update; one right after the switch finishes it', async () => {
    for (const [version, point] of [
      ['1.4.0', 'update-unpacked'],
      ['1.5.0', 'update-switched'],
    ] as const) {
      await publish(version);
      await agent.stop();
      agent = startSupervised({ POSAGENT_CRASH_POINT: point });
      await waitForLink(a.dirs);
      const id = await update(version);
      const { signal } = await agent.proc().exited;
      expect(signal).toBe('SIGKILL');
      await agent.stop(); // before the supervisor restarts it with the crash point still set
      const left = await getAction(cloud, a.terminalId, id);
      expect(left.status).toBe('processing');
      // Power back: systemd starts whatever `current` points to.
      agent = startSupervised();
      const done = await until(
        id,
        (x) => x.status === 'completed',
        `the update to ${version} after the crash`,
      );
      expect(done.step).toBe('committed');
      expect(await runningVersion()).toBe(version);
    }
    // The previous release is kept for rollback; older ones are pruned by the next install.
    expect(readdirSync(join(installDir, 'releases')).sort()).toEqual(['1.4.0', '1.5.0']);
  });

  it('the release tree is not writable by the service user (checked as that user); the daemon downloads into its state dir', async () => {
    // Let an unprivileged user reach the tree (the temp dirs are 0700), as /opt is reachable on a device.
    for (let d = installDir; d !== '/' && d !== '/tmp'; d = join(d, '..')) chmodSync(d, 0o755);
    const asNobody = (code: string) =>
      new Promise<string>((resolve) => {
        execFile(process.execPath, ['-e', code], { uid: 65534, gid: 65534 }, (err, stdout, stderr) =>
          resolve(
            err
              ? (`${stderr}`
                  .trim()
                  .split('\n')
                  .find((l) => l.includes('Error')) ?? 'error')
              : stdout.trim(),
          ),
        );
      });
    const current = readlinkSync(join(installDir, 'current'));
    expect(
      await asNobody(
        `console.log(require('fs').readFileSync('${installDir}/current/package.json','utf8').length > 0)`,
      ),
    ).toBe('true');
    expect(
      await asNobody(`require('fs').writeFileSync('${installDir}/${current}/dist/bin/posagent.js', 'evil')`),
    ).toMatch(/EACCES/);
    expect(await asNobody(`require('fs').writeFileSync('${installDir}/${current}/evil.js', 'evil')`)).toMatch(
      /EACCES/,
    );
    expect(await asNobody(`require('fs').symlinkSync('/tmp', '${installDir}/current.evil')`)).toMatch(
      /EACCES/,
    );
    expect(await asNobody(`require('fs').rmSync('${installDir}/releases', {recursive: true})`)).toMatch(
      /EACCES/,
    );
    for (const entry of readdirSync(join(installDir, 'releases'))) {
      const st = statSync(join(installDir, 'releases', entry));
      expect(st.uid).toBe(0);
      expect(st.mode & 0o022).toBe(0);
    }
    expect(existsSync(join(installDir, 'downloads'))).toBe(false);
  });
});
