import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStoreReadOnly } from '../../agent/agent-store.js';
import { DEFAULT_CONFIG, mergePatch } from '../../protocol/config-schema.js';
import type { ConfigApplied } from '../../protocol/messages.js';
import { type Cloud, cli, enrollAgent, type Proc, startAgent, startCloud } from '../support/processes.js';
import { type ScriptedCloud, serverTime, startScriptedCloud } from '../support/scripted-cloud.js';
import { waitFor } from '../support/wait-for.js';

/**
 * Issue 4: the agent killed between applying a config and having its ack answered still reports
 * the ack after restart — the ack lives in the store's outbox until the cloud answers it.
 */
describe('config ack durability', () => {
  let cloud: Cloud;
  let peer: ScriptedCloud;
  let agent: Proc | undefined;
  let answerAcks = false;
  const acks: { link: number; ack: ConfigApplied }[] = [];
  const heartbeatsOn = new Map<number, number>();

  beforeAll(async () => {
    cloud = await startCloud();
    peer = await startScriptedCloud(cloud.dataDir, (link) => ({
      Hello: () => {
        // After Hello: push version 42 (once; later links get no push).
        if (peer.links.length === 1) {
          setImmediate(() =>
            link()
              .session.call('ApplyConfig', {
                version: 42,
                config: mergePatch(DEFAULT_CONFIG, {
                  display: { idleMessage: 'v42' },
                  agent: { heartbeatIntervalSec: 1 },
                }) as Record<string, unknown>,
              })
              // the agent is killed on purpose in this test: a call cut short is expected
              .catch(() => {}),
          );
        }
        return { serverTime: serverTime(), heartbeatIntervalSec: 1, pingIntervalSec: 15 };
      },
      Heartbeat: () => {
        const n = peer.links.indexOf(link());
        heartbeatsOn.set(n, (heartbeatsOn.get(n) ?? 0) + 1);
        return { serverTime: serverTime() };
      },
      ConfigApplied: (ack) => {
        acks.push({ link: peer.links.indexOf(link()), ack });
        // Withhold the answer at first, as a cloud that crashed before answering would.
        return answerAcks ? {} : new Promise<never>(() => {});
      },
    }));
  });
  afterAll(async () => {
    agent?.child.kill('SIGKILL');
    peer?.close();
    await cloud?.stop();
  });

  it('re-sends the ack after a kill -9, first thing after Hello, and stops once it was answered', async () => {
    const a = await enrollAgent(cloud);
    agent = startAgent(a.dirs, ['--cloud-url', peer.url]);
    await waitFor(() => acks.find((x) => x.link === 0), 'the first ack (left unanswered)');
    agent.child.kill('SIGKILL');
    await agent.exited;
    // applied on disk before the kill
    const cfg = (await cli(['config', '--json', ...a.dirs.flags])).json<{
      version: number;
      config: { display: { idleMessage: string } };
    }>();
    expect(cfg.version).toBe(42);
    expect(cfg.config.display.idleMessage).toBe('v42');

    answerAcks = true;
    agent = startAgent(a.dirs, ['--cloud-url', peer.url]);
    const again = await waitFor(() => acks.find((x) => x.link === 1), 'the ack re-sent on the next link');
    expect(again.ack).toEqual({ version: 42, status: 'applied', errors: [], appliedVersion: 42 });
    // Hello came first on the new link, then the backlog.
    const calls = peer.links[1]!.frames.filter((f) => f[0] === 2).map((f) => f[2]);
    expect(calls[0]).toBe('Hello');
    expect(calls.indexOf('ConfigApplied')).toBeGreaterThan(0);

    // Answered now: once the agent has processed the answer (its outbox is empty), a third link
    // must not carry it again. (Killed before that, re-sending is right: at least once.)
    await waitFor(() => {
      const reader = openStoreReadOnly(join(a.dirs.stateDir, 'agent.db'));
      const depth = reader?.outboxDepth();
      reader?.close();
      return depth === 0;
    }, 'the answered ack gone from the outbox');
    agent.child.kill('SIGKILL');
    await agent.exited;
    agent = startAgent(a.dirs, ['--cloud-url', peer.url]);
    await waitFor(() => (heartbeatsOn.get(2) ?? 0) >= 2, 'two heartbeats on the third link');
    expect(acks.filter((x) => x.link === 2)).toEqual([]);
  });
});
