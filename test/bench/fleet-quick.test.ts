import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, start, tempDir } from '../support/processes.js';

/** `npm run fleet` still runs end to end on a small fleet (the 2,000-agent figures are in the README). */
describe('fleet simulator', () => {
  it('enrolls, connects, measures heartbeats, survives a reconnect storm and writes its report', async () => {
    const out = join(tempDir('fleet'), 'fleet-results.json');
    const p = start(join(ROOT, 'dist/bench/fleet-simulator.js'), [
      '--out',
      out,
      '--agents',
      '12',
      '--heartbeat-interval',
      '2',
      '--window-sec',
      '3',
      '--down-sec',
      '1',
    ]);
    const { code } = await p.exited;
    expect(code, p.stderr()).toBe(0);
    expect(p.output()).toMatch(/reconnect storm: cloud SIGKILLed/);
    const r = JSON.parse(readFileSync(out, 'utf8')) as {
      agents: number;
      connectMs: { p50: number };
      cloud: { rssPerTerminalKb: number };
      heartbeats: { perSecond: number };
      storm: { allBackSec: number; reconnectsPerSecond: number[] };
    };
    expect(r.agents).toBe(12);
    expect(r.heartbeats.perSecond).toBeGreaterThan(0);
    expect(r.storm.reconnectsPerSecond.reduce((a, b) => a + b, 0)).toBe(12);
    expect(r.storm.allBackSec).toBeGreaterThan(0);
  });
});
