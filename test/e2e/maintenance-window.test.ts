import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fakeReboot } from '../support/fake-reboot.js';
import {
  type Cloud,
  configureAndWait,
  enrollAgent,
  FAST_RECONNECT,
  type Proc,
  queueAction,
  restartCloud,
  startAgent,
  startCloud,
  waitForAction,
  waitForLink,
} from '../support/processes.js';
import { waitFor } from '../support/wait-for.js';

/** Kathmandu is UTC+5:45 all year (no daylight saving): its wall clock is computed here independently. */
const TZ = 'Asia/Kathmandu';
const KATHMANDU_OFFSET_MS = (5 * 60 + 45) * 60_000;
const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
const wall = (utcMs: number) => {
  const d = new Date(utcMs + KATHMANDU_OFFSET_MS);
  const hhmm = `${String(d.getUTCHours()).padStart(2, '0')}:${String(d.getUTCMinutes()).padStart(2, '0')}`;
  return { hhmm, day: DAYS[d.getUTCDay()] as (typeof DAYS)[number] };
};

/**
 * Issue 24 item 2: a reboot queued outside the store's maintenance window waits on the device —
 * across an agent restart and with the cloud gone — and runs when the window opens, in the window's
 * time zone. The agent's clock is injected (POSAGENT_CLOCK_OFFSET_MS) so that the window opens
 * seconds after the test starts; the reboot command is a fake that records when it ran.
 */
describe('the maintenance window', () => {
  let cloud: Cloud;
  let a: Awaited<ReturnType<typeof enrollAgent>>;
  let agent: Proc;
  const device = fakeReboot();
  const reboots = () => device.calls();
  // The window opens at a whole minute of the agent's clock, 30 s of real time after it starts.
  let realOpen = 0;
  let agentOpen = 0;
  let offsetMs = 0;
  const run = () =>
    startAgent(a.dirs, device.flags, {
      ...FAST_RECONNECT,
      POSAGENT_CLOCK_OFFSET_MS: String(offsetMs),
    });

  beforeAll(async () => {
    cloud = await startCloud();
    a = await enrollAgent(cloud);
    realOpen = Date.now() + 30_000;
    agentOpen = Math.ceil((realOpen + 60_000) / 60_000) * 60_000;
    offsetMs = agentOpen - realOpen;
    agent = run();
    await waitForLink(a.dirs);
  });
  afterAll(async () => {
    agent.child.kill('SIGKILL');
    await cloud?.stop();
  });

  it('a reboot outside the window waits (restart, no cloud), and runs when it opens in the store time zone', async () => {
    const opens = wall(agentOpen);
    const closes = wall(agentOpen + 30 * 60_000);
    // The store's time zone; the window (the terminal's own, here) names none, so it is the store's.
    expect((await cloud.api('POST', `/v1/locations/${a.locationId}`, { timezone: TZ })).status).toBe(200);
    await configureAndWait(cloud, a.terminalId, {
      maintenance: { days: [opens.day], from: opens.hhmm, to: closes.hhmm },
    });
    const applied = (
      await cloud.api<{ config: { desired: { maintenance: unknown } } }>(
        'GET',
        `/v1/terminals/${a.terminalId}/config`,
      )
    ).body;
    expect(JSON.stringify(applied)).toContain(`"timezone":"${TZ}"`);

    // The operator's "now" skips the window (and nothing else waits behind it: it is not queued).
    const urgent = (await queueAction(cloud, a.terminalId, { type: 'reboot', params: { now: true } })).id;
    await waitFor(() => reboots().length === 1, 'the reboot asked for now');
    agent.child.kill('SIGKILL');
    await agent.exited;
    device.newBoot('boot-urgent');
    agent = run();
    await waitForAction(
      cloud,
      a.terminalId,
      urgent,
      (x) => x.status === 'completed',
      'the urgent reboot completed',
    );
    const beforeWindow = reboots().length;

    const id = (await queueAction(cloud, a.terminalId, { type: 'reboot' })).id;
    const waiting = await waitForAction(
      cloud,
      a.terminalId,
      id,
      (x) => x.step === 'waiting',
      'the reboot waiting',
    );
    expect(waiting.status).toBe('processing');
    expect(waiting.reason).toBe(
      `waiting for the maintenance window ${opens.day} ${opens.hhmm}–${closes.hhmm} ${TZ}: opens ${new Date(agentOpen).toISOString()}`,
    );
    expect(reboots()).toHaveLength(beforeWindow);

    // The agent restarts while it waits: the action waits again, from the store.
    agent.child.kill('SIGKILL');
    await agent.exited;
    agent = run();
    await waitForLink(a.dirs);
    expect(reboots()).toHaveLength(beforeWindow);
    expect(Date.now()).toBeLessThan(realOpen); // still before the window (the test's own premise)

    // The cloud goes away: the device still knows its window and runs the reboot when it opens.
    await cloud.stop();
    await waitFor(
      () => reboots().length === beforeWindow + 1,
      'the reboot to run once the window opens',
      30_000,
    );
    const ranAt = Number(reboots()[beforeWindow]?.split(' ')[2]);
    expect(ranAt + offsetMs).toBeGreaterThanOrEqual(agentOpen);
    expect(ranAt + offsetMs).toBeLessThan(agentOpen + 10_000);

    // The "reboot": a new boot id, the agent starts again, the cloud is back: completed.
    agent.child.kill('SIGKILL');
    await agent.exited;
    device.newBoot('boot-2');
    cloud = await restartCloud(cloud);
    agent = run();
    const done = await waitForAction(
      cloud,
      a.terminalId,
      id,
      (x) => x.status === 'completed',
      'the reboot completed',
    );
    expect(done.step).toBe('rebooted');
    expect(reboots()).toHaveLength(beforeWindow + 1);
  }, 60_000);
});
