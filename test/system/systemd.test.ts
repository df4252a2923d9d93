import { execFile } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newFactoryIdentity, newManufacturerCa } from '../../harness/factory-identity.js';
import { newReleaseKey, packRelease, publishRelease, signRelease } from '../../harness/releases.js';
import {
  type Cloud,
  type CloudAction,
  queueAction,
  ROOT,
  startCloud,
  tempDir,
  waitForAction,
} from '../support/processes.js';
import { waitFor } from '../support/wait-for.js';
import { boot, type Container, checkHost, copyRoot, debianRoot } from './container.js';

const run = promisify(execFile);

/**
 * Issue 16 under a real systemd (252, booted with systemd-nspawn): the `npm pack` tarball
 * installed into a Debian root with systemd/install.sh, as an image builder would; the terminal
 * enrolls itself on first boot with its factory identity; the unit is Type=notify with its
 * watchdog; the release tree is root's; a good update goes through polkit and the privileged
 * installer; an unstartable release is rolled back by the boot guard within the start limit.
 * `npm run test:system` (root, debootstrap, systemd-container); .ci/run runs it.
 */
describe('posagent under a real systemd (systemd-nspawn)', () => {
  let cloud: Cloud;
  let c: Container;
  let terminalId: string;
  const work = tempDir('system');
  const root = join('/var/tmp', `posagent-system-run-${process.pid}`);
  const serial = `SN-SYS-${Date.now()}`;
  const releases = new Map<string, string>();
  const log = (m: string) => process.stdout.write(`system test: ${m}\n`);
  const show = async (prop: string) =>
    (await c.exec(['systemctl', 'show', '-p', prop, '--value', 'posagent.service'])).stdout.trim();

  beforeAll(async () => {
    checkHost();
    const cached = await debianRoot(log);
    await copyRoot(cached, root);
    const key = await newReleaseKey();
    cloud = await startCloud(['--heartbeat-interval', '1', '--release-public-key', key.publicKeyFile]);

    // The fleet side: a manufacturer CA, this device pre-registered by its factory certificate.
    const maker = newManufacturerCa();
    const mca = await cloud.api<{ id: string }>('POST', '/v1/manufacturer-cas', {
      name: 'Acme',
      certificate: maker.certificatePem,
    });
    const loc = await cloud.api<{ id: string }>('POST', '/v1/locations', { name: 'Store 1' });
    await cloud.api('POST', '/v1/preregistrations', {
      serialNumber: serial,
      locationId: loc.body.id,
      name: 'Till S1',
      manufacturerCaId: mca.body.id,
    });

    // The image: three releases of this package, the first installed by install.sh --root.
    const packs = tempDir('system-packs');
    releases.set('1.0.0', await packRelease('1.0.0', packs));
    releases.set('1.1.0', await packRelease('1.1.0', packs));
    releases.set(
      '1.2.0',
      await packRelease('1.2.0', packs, async (stage) => {
        const bin = join(stage, 'dist/bin/posagent.js');
        const [shebang, ...rest] = readFileSync(bin, 'utf8').split('\n');
        writeFileSync(
          bin,
          [
            shebang,
            "if (process.argv[2] === 'run') { console.error('1.2.0: cannot start'); process.exit(1); }",
            ...rest,
          ].join('\n'),
        );
      }),
    );
    for (const [v, tarball] of releases) {
      const s = await signRelease(tarball, key);
      expect((await publishRelease(cloud, tarball, s)).status, v).toBe(201);
    }
    const settings = join(work, 'agent.json');
    writeFileSync(
      settings,
      JSON.stringify({
        cloudUrl: cloud.url,
        autoEnroll: true,
        reconnectBaseMs: 200,
        reconnectCapMs: 2000,
        updateHealthWindowSec: 30,
        rebootCommand: 'echo "no reboots in the system test" >&2; exit 1',
      }),
    );
    await run('sh', [
      join(ROOT, 'systemd/install.sh'),
      '--root',
      root,
      '--node',
      '/usr/bin/node',
      '--release-key',
      key.publicKeyFile,
      '--settings',
      settings,
      releases.get('1.0.0')!,
    ]);
    writeFileSync(join(root, 'etc/posagent/fleet-ca.crt'), readFileSync(cloud.caFile));
    // The factory identity, as the manufacturer leaves it: root's, readable by the service's group.
    const passwd = readFileSync(join(root, 'etc/passwd'), 'utf8');
    const [, uid, gid] = /^posagent:x:(\d+):(\d+):/m.exec(passwd) ?? [];
    const factory = newFactoryIdentity(serial, maker, join(root, 'etc/posagent/factory'));
    chownSync(factory.keyFile, 0, Number(gid));
    chmodSync(factory.keyFile, 0o640);
    chmodSync(join(root, 'etc/posagent/factory'), 0o755);
    expect(uid).toBeDefined();
    // The test's only change to the unit: a short watchdog and a loop blocker to trip it.
    mkdirSync(join(root, 'etc/systemd/system/posagent.service.d'), { recursive: true });
    writeFileSync(
      join(root, 'etc/systemd/system/posagent.service.d/test.conf'),
      '[Service]\nWatchdogSec=3s\nEnvironment=POSAGENT_BLOCK_LOOP_MS=20000\n',
    );
    c = await boot(root);
    log('container booted');
  }, 300_000);

  afterAll(async () => {
    if (c) {
      const journal = await c.exec([
        'journalctl',
        '--no-pager',
        '-n',
        '300',
        '-u',
        'posagent',
        '-u',
        'posagent-update@*',
      ]);
      writeFileSync(join(work, 'journal.txt'), journal.stdout);
      await c.stop();
    }
    await cloud?.stop();
    rmSync(root, { recursive: true, force: true });
  }, 60_000);

  it('first boot: the unit is active after READY and the terminal enrolls itself with its factory identity', async () => {
    await waitFor(
      async () => (await show('ActiveState')) === 'active' || undefined,
      'posagent active',
      120_000,
      250,
    ).catch(async (err: Error) => {
      const journal = await c.exec(['journalctl', '--no-pager', '-n', '80', '-u', 'posagent']);
      throw new Error(`${err.message}\njournal (posagent, tail):\n${journal.stdout}${journal.stderr}`);
    });
    expect(await show('Type')).toBe('notify');
    const terminal = await waitFor(
      async () => {
        const list = await cloud.api<{ data: { id: string; serialNumber: string; status: string }[] }>(
          'GET',
          '/v1/terminals?limit=100',
        );
        return list.body.data.find((t) => t.serialNumber === serial && t.status === 'online');
      },
      'the terminal online in the cloud',
      60_000,
      250,
    );
    terminalId = terminal.id;
    await waitFor(
      async () => /link online/.test(await show('StatusText')) || undefined,
      'STATUS=link online',
      30_000,
      250,
    );
    // It runs as the service user, from the release tree.
    const pid = await show('MainPID');
    const status = await c.sh(`cat /proc/${pid}/status`);
    const uid = /^posagent:x:(\d+):/m.exec(readFileSync(join(root, 'etc/passwd'), 'utf8'))![1];
    expect(status).toMatch(new RegExp(`^Uid:\\s+${uid}\\s`, 'm'));
  });

  it('the service user cannot write /opt/posagent', async () => {
    const asService = (line: string) =>
      c.exec(['setpriv', '--reuid=posagent', '--regid=posagent', '--clear-groups', '/bin/sh', '-c', line]);
    expect((await asService('cat /opt/posagent/current/package.json >/dev/null')).code).toBe(0);
    for (const line of [
      'touch /opt/posagent/evil',
      'touch /opt/posagent/current/dist/bin/evil.js',
      'echo x >> /opt/posagent/current/dist/bin/posagent.js',
      'ln -sfn /tmp /opt/posagent/current',
      'rm -rf /opt/posagent/releases/1.0.0',
      'touch /usr/lib/posagent/posagent-installer.js',
    ]) {
      const r = await asService(line);
      expect(r.code, line).not.toBe(0);
      expect(r.stderr, line).toMatch(/Permission denied|Operation not permitted|Read-only/);
    }
    expect(await c.sh('stat -c %U:%a /opt/posagent /opt/posagent/releases /usr/lib/posagent')).toBe(
      'root:755\nroot:755\nroot:755\n',
    );
  });

  it('the watchdog restarts a blocked event loop', async () => {
    const before = Number(await show('NRestarts'));
    await c.sh('systemctl kill -s SIGUSR2 --kill-whom=main posagent.service');
    await waitFor(
      async () => Number(await show('NRestarts')) > before || undefined,
      'a watchdog restart',
      30_000,
      250,
    );
    const journal = await c.sh('journalctl --no-pager -u posagent.service');
    expect(journal).toMatch(/Watchdog timeout/);
    await waitFor(
      async () => (await show('ActiveState')) === 'active' || undefined,
      'active again',
      30_000,
      250,
    );
  });

  /** Queues an update and waits for it to end (completed or failed), whichever it is. */
  const updateTo = async (version: string, what: string): Promise<CloudAction> => {
    const action = await queueAction(cloud, terminalId, { type: 'update', params: { version } });
    return waitForAction(
      cloud,
      terminalId,
      action.id,
      (x) => x.status === 'completed' || x.status === 'failed',
      what,
      120_000,
    );
  };

  it('a signed update goes through polkit and the privileged installer, and commits', async () => {
    const done = await updateTo('1.1.0', 'the update to 1.1.0');
    expect(done, JSON.stringify(done)).toMatchObject({ status: 'completed', step: 'committed' });
    expect(await c.sh('readlink /opt/posagent/current')).toBe('releases/1.1.0\n');
    expect(
      await c.sh('stat -c %U /opt/posagent/releases/1.1.0 /opt/posagent/releases/1.1.0/dist/bin/posagent.js'),
    ).toBe('root\nroot\n');
    const journal = await c.sh(
      'journalctl --no-pager -u posagent-update@stage.service -u posagent-update@activate.service',
    );
    expect(journal).toMatch(/staged 1\.1\.0 beside 1\.0\.0/);
    expect(journal).toMatch(/current -> 1\.1\.0 \(from 1\.0\.0\)/);
    // The commit ended the trial at once, through polkit and the installer's commit step.
    await waitFor(
      async () => (await c.exec(['test', '-e', '/opt/posagent/trial.json'])).code !== 0 || undefined,
      'the trial ended',
      30_000,
      250,
    );
    expect(await c.sh('journalctl --no-pager -u posagent-update@commit.service')).toMatch(
      /1\.1\.0 committed; trial over/,
    );
  });

  it('an unstartable signed release is rolled back by the boot guard within the start limit; the old version reports it', async () => {
    const failed = await updateTo('1.2.0', 'the update to the unstartable release');
    expect(failed.status).toBe('failed');
    expect(failed.reason).toMatch(
      /version 1\.2\.0 failed to start: 3 starts without reaching the cloud .*the boot guard rolled back to 1\.1\.0/,
    );
    expect(await c.sh('readlink /opt/posagent/current')).toBe('releases/1.1.0\n');
    expect((await c.exec(['test', '-e', '/opt/posagent/releases/1.2.0'])).code).not.toBe(0);
    await waitFor(
      async () => (await show('ActiveState')) === 'active' || undefined,
      'active on 1.1.0',
      30_000,
      250,
    );
    expect(await show('Result')).not.toBe('start-limit-hit');
    const journal = await c.sh('journalctl --no-pager -u posagent.service');
    expect(journal).toMatch(/1\.2\.0: cannot start/);
    expect(journal).toMatch(/rolling back 1\.2\.0 to 1\.1\.0/);
    const t = await cloud.api<{ softwareVersion: string; status: string }>(
      'GET',
      `/v1/terminals/${terminalId}`,
    );
    expect(t.body).toMatchObject({ softwareVersion: '1.1.0', status: 'online' });
  });
});
