import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Cloud,
  cli,
  enrollAgent,
  FAST_RECONNECT,
  type Proc,
  restartCloud,
  startAgent,
  startCloud,
  waitForLink,
} from '../support/processes.js';
import { waitFor } from '../support/wait-for.js';

/**
 * Issue 23.2: TLS session resumption for the agent link. The cloud's ticket key comes from a
 * secret in its data dir (0600, kept across restarts); the agent keeps its session in memory (or
 * on disk, 0600, with tlsSessionsOnDisk), so a reconnect after a cloud restart — here a SIGKILL of
 * the real cloud process — resumes the session (tlsSocket.isSessionReused() on the agent side,
 * logged with "link online"). A new certificate never resumes a session made with the old one.
 */
interface OnlineLine {
  msg: string;
  handshake?: 'resumed' | 'full';
  tlsVersion?: string;
}

function onlineLines(agent: Proc): OnlineLine[] {
  return agent
    .output()
    .split('\n')
    .filter((l) => l.includes('"msg":"link online"'))
    .map((l) => JSON.parse(l) as OnlineLine);
}

/** The next "link online" line after the first `seen`. */
function nextOnline(agent: Proc, seen: number): Promise<OnlineLine> {
  return waitFor(() => onlineLines(agent)[seen], 'the next "link online"', 60_000);
}

describe('TLS session resumption', () => {
  let cloud: Cloud;
  beforeAll(async () => {
    cloud = await startCloud(['--heartbeat-interval', '1']);
  });
  afterAll(() => cloud?.stop());

  it('after the cloud is killed and restarted the agent reconnects with a resumed session; the ticket secret is 0600 and survives the restart', async () => {
    const a = await enrollAgent(cloud);
    const secretFile = join(cloud.dataDir, 'ticket-keys.key');
    expect(statSync(secretFile).mode & 0o777).toBe(0o600);
    const secret = readFileSync(secretFile, 'utf8');
    const agent = startAgent(a.dirs, [], FAST_RECONNECT);
    try {
      const first = await nextOnline(agent, 0);
      expect(first).toMatchObject({ handshake: 'full', tlsVersion: 'TLSv1.3' });
      // Let the session ticket arrive (it follows the handshake), then kill the cloud outright.
      await waitForLink(a.dirs);
      cloud.proc.child.kill('SIGKILL');
      await cloud.proc.exited;
      cloud = await restartCloud(cloud);
      const again = await nextOnline(agent, 1);
      expect(again).toMatchObject({ handshake: 'resumed', tlsVersion: 'TLSv1.3' });
      expect(readFileSync(secretFile, 'utf8')).toBe(secret);
      expect(agent.output()).not.toMatch(/PRIVATE KEY|tls-sessions/);
    } finally {
      agent.child.kill('SIGTERM');
      await agent.exited;
    }
  });

  it('a renewed certificate makes a full handshake (its session is not the old certificate’s); the one after resumes', async () => {
    const a = await enrollAgent(cloud);
    const agent = startAgent(a.dirs, [], { ...FAST_RECONNECT, POSAGENT_RENEW_BEFORE_DAYS: '0' });
    try {
      await nextOnline(agent, 0);
      await waitForLink(a.dirs);
      const renewed = await cli(['cert', '--renew', '--json', ...a.dirs.flags]);
      expect(renewed.code, renewed.stdout).toBe(0);
      const withNewCert = await nextOnline(agent, 1);
      expect(withNewCert.handshake).toBe('full');
      await waitForLink(a.dirs);
      cloud.proc.child.kill('SIGKILL');
      await cloud.proc.exited;
      cloud = await restartCloud(cloud);
      expect((await nextOnline(agent, 2)).handshake).toBe('resumed');
    } finally {
      agent.child.kill('SIGTERM');
      await agent.exited;
    }
  });

  it('with tlsSessionsOnDisk the session is kept in keys/tls-sessions.json (0600) and a restarted agent resumes it; without, it is not written', async () => {
    const a = await enrollAgent(cloud);
    const file = join(a.dirs.stateDir, 'keys/tls-sessions.json');
    const env = { ...FAST_RECONNECT, POSAGENT_TLS_SESSIONS_ON_DISK: 'true' };
    let agent = startAgent(a.dirs, [], env);
    try {
      expect((await nextOnline(agent, 0)).handshake).toBe('full');
      await waitFor(() => {
        try {
          return Object.keys(JSON.parse(readFileSync(file, 'utf8'))).length > 0 ? true : undefined;
        } catch {
          return undefined;
        }
      }, 'the session on disk');
      expect(statSync(file).mode & 0o777).toBe(0o600);
    } finally {
      agent.child.kill('SIGTERM');
      await agent.exited;
    }
    agent = startAgent(a.dirs, [], env);
    try {
      expect((await nextOnline(agent, 0)).handshake).toBe('resumed');
    } finally {
      agent.child.kill('SIGTERM');
      await agent.exited;
    }
    // The default keeps sessions in memory only: a restarted agent makes a full handshake.
    const b = await enrollAgent(cloud);
    agent = startAgent(b.dirs, [], FAST_RECONNECT);
    try {
      await nextOnline(agent, 0);
      await waitForLink(b.dirs);
    } finally {
      agent.child.kill('SIGTERM');
      await agent.exited;
    }
    expect(() => statSync(join(b.dirs.stateDir, 'keys/tls-sessions.json'))).toThrow();
    agent = startAgent(b.dirs, [], FAST_RECONNECT);
    try {
      expect((await nextOnline(agent, 0)).handshake).toBe('full');
    } finally {
      agent.child.kill('SIGTERM');
      await agent.exited;
    }
  });
});
