import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Cloud,
  enrollAgent,
  POSAGENT,
  type Proc,
  startAgent,
  startCloud,
  waitForLink,
} from '../support/processes.js';
import { waitFor } from '../support/wait-for.js';

const run = promisify(execFile);

/**
 * Issue 8: `posagent menu` driven through a real pseudo-terminal (tmux): keys in with send-keys,
 * the screen read back with capture-pane — home, two screens and back, then quit.
 */
describe('posagent menu', () => {
  let cloud: Cloud;
  let agent: Proc;
  let a: Awaited<ReturnType<typeof enrollAgent>>;
  const server = `posagent-test-${process.pid}`;
  const session = 'menu';
  const tmux = (...args: string[]) => run('tmux', ['-L', server, ...args]);
  const screen = async () => (await tmux('capture-pane', '-p', '-t', session)).stdout;
  const waitScreen = (text: RegExp, what: string) =>
    waitFor(async () => {
      const s = await screen();
      return text.test(s) ? s : undefined;
    }, what);
  const key = (k: string) => tmux('send-keys', '-t', session, k);

  beforeAll(async () => {
    cloud = await startCloud();
    a = await enrollAgent(cloud);
    agent = startAgent(a.dirs);
    await waitForLink(a.dirs);
  });
  afterAll(async () => {
    await tmux('kill-server').catch(() => undefined);
    agent.child.kill('SIGKILL');
    await cloud.stop();
  });

  it('shows the three Adyen lines, runs diagnostics, shows the enrollment, goes back, quits', async () => {
    const cmd = [
      process.execPath,
      POSAGENT,
      'menu',
      ...a.dirs.flags,
      '--settings',
      join(a.dirs.stateDir, '..', 'agent.json'),
    ].join(' ');
    await tmux('new-session', '-d', '-s', session, '-x', '120', '-y', '50', cmd);
    const home = await waitScreen(/Choose:/, 'the home screen');
    expect(home).toMatch(/Terminal API\s+enabled/);
    expect(home).toMatch(/WebSocket\s+enabled/);
    expect(home).toMatch(/WebSocket connection\s+connected/);
    expect(home).toMatch(/1 {2}Run diagnostics/);

    await key('1');
    const report = await waitScreen(/Press any key to go back/, 'the diagnostics screen');
    expect(report).toMatch(/PASS {2}tls/);
    expect(report).toMatch(/\d+ passed, \d+ warnings, 0 failed/);
    await key('Space');
    await waitScreen(/Choose:/, 'home again');

    await key('4');
    const enrollment = await waitScreen(/Press any key to go back/, 'the enrollment screen');
    expect(enrollment).toContain(`Enrolled as "Front Register 1" (${a.terminalId})`);
    await key('x');
    await waitScreen(/Choose:/, 'home once more');

    await key('q');
    await waitFor(async () => {
      const r = await tmux('has-session', '-t', session).then(
        () => true,
        () => false,
      );
      return !r;
    }, 'the menu to exit');
  });
});
