import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localApiRequest } from '../../agent/local-api/local-api-client.js';
import {
  agentDirs,
  type Cloud,
  cli,
  enrollAgent,
  enrollWithCli,
  newEnrollmentCode,
  startAgent,
  startCloud,
  waitForLink,
} from '../support/processes.js';

/** Issue 16: one daemon per state dir; `enroll --force` never swaps the identity under a running daemon. */
describe('one daemon per state dir', () => {
  let cloud: Cloud;
  beforeAll(async () => {
    cloud = await startCloud();
  });
  afterAll(async () => cloud.stop());

  it('a second daemon is refused with its message and leaves the first online; after a SIGKILL the lock is free again', async () => {
    const a = await enrollAgent(cloud);
    const first = startAgent(a.dirs);
    try {
      await waitForLink(a.dirs);
      const socket = `${a.dirs.runtimeDir}/api.sock`;
      const before = (await localApiRequest<{ link: { since: string } }>(socket, 'GET', '/v1/status')).body;
      const second = startAgent(a.dirs);
      const end = await second.exited;
      expect(end.code).toBe(1);
      expect(second.output() + second.stderr()).toContain(
        `another posagent daemon (pid ${first.child.pid}) is running on the state dir ${a.dirs.stateDir}`,
      );
      // With --json: stdout is one JSON document (the log goes to stderr then).
      const third = startAgent(a.dirs, ['--json']);
      expect((await third.exited).code).toBe(1);
      expect(JSON.parse(third.output())).toMatchObject({ error: { code: 'start_failed' } });
      expect(third.stderr()).toContain('agent failed to start');
      // The first never lost its link.
      const after = (
        await localApiRequest<{ link: { state: string; since: string } }>(socket, 'GET', '/v1/status')
      ).body;
      expect(after.link).toMatchObject({ state: 'online', since: before.link.since });

      // enroll --force beside the running daemon: refused (5), the identity untouched.
      const identity = readFileSync(`${a.dirs.stateDir}/identity.json`, 'utf8');
      const key = readFileSync(`${a.dirs.stateDir}/keys/client.key`, 'utf8');
      const { code } = await newEnrollmentCode(cloud, 'Till F');
      const forced = await enrollWithCli(cloud, code, a.dirs, { extraArgs: ['--force'] });
      expect(forced.code).toBe(5);
      expect(forced.json<{ error: { code: string; message: string } }>().error).toMatchObject({
        code: 'daemon_running',
        message: expect.stringMatching(/would leave it on the old one/),
      });
      expect(readFileSync(`${a.dirs.stateDir}/identity.json`, 'utf8')).toBe(identity);
      expect(readFileSync(`${a.dirs.stateDir}/keys/client.key`, 'utf8')).toBe(key);
      // decommission --force from a shell with another runtime dir: the lock, not the socket, says
      // the daemon runs — refused, nothing wiped (a security review wiped a live store this way).
      const decommission = await cli([
        'decommission',
        '--force',
        '--json',
        '--state-dir',
        a.dirs.stateDir,
        '--runtime-dir',
        `${a.dirs.runtimeDir}-other`,
      ]);
      expect(decommission.code).toBe(5);
      expect(decommission.json<{ error: { code: string } }>().error.code).toBe('daemon_running');
      expect(readFileSync(`${a.dirs.stateDir}/identity.json`, 'utf8')).toBe(identity);
      // The code was not spent: it still enrolls elsewhere.
      const elsewhere = await enrollWithCli(cloud, code, agentDirs());
      expect(elsewhere.code, elsewhere.stdout).toBe(0);
    } finally {
      first.child.kill('SIGKILL');
      await first.exited;
    }
    const again = startAgent(a.dirs);
    try {
      await waitForLink(a.dirs);
    } finally {
      again.child.kill('SIGTERM');
      await again.exited;
    }
  });
});
