import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Cloud,
  enrollAgent,
  FAST_RECONNECT,
  type Proc,
  startAgent,
  startCloud,
  tempDir,
} from '../../harness/local-fleet.js';
import { waitFor } from '../../harness/wait-for.js';

interface Wake {
  at: number;
  ms: number;
  repeat: boolean;
}

/**
 * An idle, online daemon wakes only for work: its one link timer to ping (every P/2), nothing
 * else — no liveness check between pings, no sweep of the local API's (empty) connections.
 * Every timer callback of the real daemon is recorded by a preloaded async hook.
 */
describe('idle daemon timers', () => {
  const PING_SEC = 3;
  let cloud: Cloud;
  let agent: Proc | undefined;
  beforeAll(async () => {
    // Heartbeats far apart, so that in the window watched the only work is the link's pings.
    cloud = await startCloud(['--ping-interval', String(PING_SEC), '--heartbeat-interval', '3600']);
  });
  afterAll(async () => {
    agent?.child.kill('SIGKILL');
    await agent?.exited;
    await cloud.stop();
  });

  it('an online agent with no clients wakes only to ping: no timer fires between two pings', async () => {
    const { dirs } = await enrollAgent(cloud);
    const file = join(tempDir('wakes'), 'wakes.jsonl');
    agent = startAgent(dirs, [], {
      ...FAST_RECONNECT,
      NODE_OPTIONS: `--require ${join(import.meta.dirname, 'fixtures/record-timer-wakes.cjs')}`,
      TIMER_WAKES_FILE: file,
    });
    const a = agent;
    await waitFor(() => a.output().includes('"msg":"link online"'), 'the link online', 20_000);
    const onlineAt = Date.now();
    const wakes = (): Wake[] =>
      existsSync(file)
        ? readFileSync(file, 'utf8')
            .trim()
            .split('\n')
            .map((l) => JSON.parse(l) as Wake)
            .filter((w) => w.at >= onlineAt)
        : [];
    // Five wakes after the link came up: with pings every P/2 = 1.5 s that is ~7 s; before
    // issue 23 there were a liveness check every P/8 and a sweep every second in between.
    const seen = await waitFor(() => (wakes().length >= 5 ? wakes() : undefined), 'five timer wakes', 30_000);
    const gaps = seen.slice(1).map((w, i) => w.at - seen[i]!.at);
    expect(
      seen.every((w) => !w.repeat),
      JSON.stringify(seen),
    ).toBe(true);
    // Each wake is the next ping: armed for P/2 after the last one (less the few ms it took to
    // re-arm), never sooner. A timer may fire late on a loaded host, not early.
    for (const w of seen.slice(1)) expect(w.ms, JSON.stringify(seen)).toBeGreaterThan(PING_SEC * 500 - 50);
    for (const g of gaps) expect(g, JSON.stringify(seen)).toBeGreaterThanOrEqual(PING_SEC * 500 - 50);
    expect(a.output()).not.toContain('liveness lost');
  }, 60_000);
});
