import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT, tempDir } from '../support/processes.js';

const run = promisify(execFile);
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/**
 * Issue 9: `npm pack` → systemd/install.sh --root → the image tree, and the installed
 * `posagent --version` runs from it (the release carries its own native addons).
 */
describe('install from the package tarball', () => {
  let tarball: string;
  const root = tempDir('image');
  const install = (...args: string[]) =>
    run('sh', [join(ROOT, 'systemd/install.sh'), '--root', root, ...args]);

  beforeAll(async () => {
    const out = tempDir('pack');
    const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', out], {
      cwd: ROOT,
    });
    const [packed] = JSON.parse(stdout) as { filename: string; files: { path: string }[] }[];
    tarball = join(out, packed!.filename);
    // Only what runs ships: the bundles, the native addons, the systemd files, the docs.
    const paths = packed!.files.map((f) => f.path);
    expect(
      paths.every((p) =>
        /^(dist\/bin\/|dist\/node_modules\/|systemd\/|docs\/|README\.md|package\.json)/.test(p),
      ),
    ).toBe(true);
    expect(paths).toContain('dist/node_modules/better-sqlite3/build/Release/better_sqlite3.node');
    expect(paths).toContain('dist/node_modules/unix-dgram/build/Release/unix_dgram.node');
  }, 60_000);

  it('lays out releases, the current link, the unit, sysusers, tmpfiles and the polkit rule', async () => {
    await install(tarball);
    const opt = join(root, 'opt/posagent');
    expect(readlinkSync(join(opt, 'current'))).toBe(`releases/${VERSION}`);
    const { stdout } = await run(process.execPath, [join(opt, 'current/dist/bin/posagent.js'), '--version']);
    expect(stdout.trim()).toBe(VERSION);

    const unit = readFileSync(join(root, 'etc/systemd/system/posagent.service'), 'utf8');
    expect(unit).toContain(`ExecStart=${process.execPath} /opt/posagent/current/dist/bin/posagent.js run`);
    expect(unit).toContain(`ExecStartPre=+${process.execPath} /usr/lib/posagent/posagent-installer.js guard`);
    expect(readFileSync(join(root, 'etc/systemd/system/posagent-update@.service'), 'utf8')).toContain(
      `ExecStart=${process.execPath} /usr/lib/posagent/posagent-installer.js %i`,
    );
    // The installer and boot guard: outside every release, root's, self-contained (runs on its own).
    const installer = join(root, 'usr/lib/posagent/posagent-installer.js');
    expect(statSync(installer).uid).toBe(0);
    const help = await run(process.execPath, [installer, '--help']);
    expect(help.stdout).toMatch(/^usage: posagent-installer stage\|activate\|guard\|stopped/);
    // The release tree is root's and not writable by group or others.
    for (const d of [opt, join(opt, 'releases'), join(opt, `releases/${VERSION}`)]) {
      expect(statSync(d).uid).toBe(0);
      expect(statSync(d).mode & 0o022).toBe(0);
    }
    // Enabled: the link is absolute inside the image (it resolves once the image boots).
    expect(readlinkSync(join(root, 'etc/systemd/system/multi-user.target.wants/posagent.service'))).toBe(
      '/etc/systemd/system/posagent.service',
    );
    expect(readFileSync(join(root, 'usr/lib/sysusers.d/posagent.conf'), 'utf8')).toMatch(/^u posagent /m);
    expect(readFileSync(join(root, 'usr/lib/tmpfiles.d/posagent.conf'), 'utf8')).toMatch(
      /^d \/opt\/posagent /m,
    );
    expect(readFileSync(join(root, 'etc/polkit-1/rules.d/50-posagent.rules'), 'utf8')).toContain(
      'org.freedesktop.login1.reboot',
    );
    expect(readFileSync(join(root, 'etc/passwd'), 'utf8')).toMatch(
      /^posagent:x:\d+:\d+:.*:\/var\/lib\/posagent:\/usr\/sbin\/nologin$/m,
    );
    expect(JSON.parse(readFileSync(join(root, 'etc/posagent/agent.json'), 'utf8'))).toEqual({});
    expect(statSync(join(root, 'etc/systemd/system/posagent.service')).mode & 0o777).toBe(0o644);
  });

  it('is idempotent, and --uninstall keeps the state dir unless --purge', async () => {
    const again = await install(tarball);
    expect(again.stdout).toContain(`release ${VERSION} already installed`);
    expect(readlinkSync(join(root, 'opt/posagent/current'))).toBe(`releases/${VERSION}`);

    mkdirSync(join(root, 'var/lib/posagent'), { recursive: true });
    writeFileSync(join(root, 'var/lib/posagent/identity.json'), '{}');
    const removed = await install('--uninstall');
    expect(removed.stdout).toMatch(/kept .*var\/lib\/posagent/);
    expect(existsSync(join(root, 'opt/posagent'))).toBe(false);
    expect(existsSync(join(root, 'etc/systemd/system/posagent.service'))).toBe(false);
    expect(existsSync(join(root, 'var/lib/posagent/identity.json'))).toBe(true);
    await install('--uninstall', '--purge');
    expect(existsSync(join(root, 'var/lib/posagent'))).toBe(false);
  });

  it('refuses what is not a package tarball, with a clear error', async () => {
    const bogus = join(tempDir('bogus'), 'x.tgz');
    writeFileSync(bogus, 'not a tarball');
    const r = await install(bogus).catch((e: { code: number; stderr: string }) => e);
    expect((r as { code: number }).code).toBe(1);
    expect((r as { stderr: string }).stderr).toMatch(/not an npm pack tarball/);
  });
});
