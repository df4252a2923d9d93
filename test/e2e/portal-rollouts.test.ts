import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeploymentView } from '../../cloud/deployments/deployment-service.js';
import { newReleaseKey, packRelease, publishRelease, signRelease } from '../../harness/releases.js';
import { call, csrfOf, FORM, signInAs } from '../support/portal-client.js';
import {
  addOperator,
  type Cloud,
  enrollAgent,
  FAST_RECONNECT,
  type Proc,
  startAgent,
  startCloud,
  tempDir,
  waitForAction,
  waitForLink,
} from '../support/processes.js';
import { waitFor } from '../support/wait-for.js';

const PASSWORD = 'correct horse battery staple';
const PAN = '4111111111111111';

/**
 * Issue 24 in the support portal, through the built cloud: deployments with their progress per
 * group (admin pauses, resumes, cancels; support only looks), and Collect logs on a terminal page
 * with the bundle shown as text — scrubbed.
 */
describe('the portal: deployments and logs', () => {
  let cloud: Cloud;
  let agent: Proc;
  let a: Awaited<ReturnType<typeof enrollAgent>>;
  let offline: string[];
  let deploymentId: string;
  const session = async (name: string) => (await signInAs(cloud, name, PASSWORD)).cookie;
  const page = (cookie: string, path: string) => call(cloud, 'GET', path, { headers: { cookie } });
  const post = async (cookie: string, path: string, from: string, fields: Record<string, string> = {}) =>
    call(cloud, 'POST', path, {
      headers: { ...FORM, cookie, origin: cloud.url },
      body: new URLSearchParams({ _csrf: csrfOf(await page(cookie, from)), ...fields }).toString(),
    });

  beforeAll(async () => {
    const key = await newReleaseKey();
    cloud = await startCloud(['--release-public-key', key.publicKeyFile]);
    await addOperator(cloud, 'ada', 'admin', PASSWORD);
    await addOperator(cloud, 'sam', 'support', PASSWORD);
    const tarball = await packRelease('1.1.0', tempDir('packs'));
    expect((await publishRelease(cloud, tarball, await signRelease(tarball, key))).status).toBe(201);
    // Three terminals that stay offline (their update actions wait), and one online with a journal.
    offline = [];
    for (let i = 0; i < 3; i++) offline.push((await enrollAgent(cloud)).terminalId);
    const journal = join(tempDir('journal'), 'journal.txt');
    writeFileSync(
      journal,
      `${JSON.stringify({ level: 30, msg: `paid with ${PAN}` })}\n${JSON.stringify({ level: 30, msg: 'link online' })}\n`,
    );
    a = await enrollAgent(cloud);
    agent = startAgent(a.dirs, [], { ...FAST_RECONNECT, POSAGENT_LOGS_COMMAND: `cat ${journal}` });
    await waitForLink(a.dirs);
    const created = await cloud.api<DeploymentView>('POST', '/v1/deployments', {
      name: 'Spring release',
      release: '1.1.0',
      target: { terminalIds: offline },
      groups: [{ count: 1 }, { percent: 100 }],
      advanceWhen: { successPercent: 100 },
    });
    expect(created.status).toBe(201);
    deploymentId = created.body.id;
  }, 120_000);
  afterAll(async () => {
    agent?.child.kill('SIGKILL');
    await cloud?.stop();
  });

  it('the list and the progress per group; support sees no buttons and is refused a forged POST', async () => {
    const sam = await session('sam');
    const list = await page(sam, '/portal/deployments');
    expect(list.status).toBe(200);
    expect(list.body).toContain('Spring release');
    expect(list.body).toContain(`data-deployment-id="${deploymentId}"`);
    const detail = await page(sam, `/portal/deployments/${deploymentId}`);
    expect(detail.body).toContain('<tr data-group="1">');
    expect(detail.body).toContain('<tr data-group="2">');
    expect(detail.body).toMatch(/<progress max="1" value="0"/);
    expect(detail.body).toContain('State: <strong class="deployment-running">running</strong>');
    expect(detail.body).not.toContain('/pause"');
    const live = await page(sam, `/portal/deployments/${deploymentId}/live`);
    expect(live.body).toContain('hx-trigger="every 3s"');
    const forged = await post(
      sam,
      `/portal/deployments/${deploymentId}/pause`,
      `/portal/deployments/${deploymentId}`,
    );
    expect(forged.status).toBe(403);
    expect((await cloud.api<DeploymentView>('GET', `/v1/deployments/${deploymentId}`)).body.state).toBe(
      'running',
    );
  });

  it('admin pauses, resumes, cancels after a confirmation; a move the state does not take shows why', async () => {
    const ada = await session('ada');
    const from = `/portal/deployments/${deploymentId}`;
    const paused = await post(ada, `${from}/pause`, from);
    expect(paused.status).toBe(303);
    expect(paused.headers.location).toBe(`${from}?done=paused`);
    expect((await page(ada, `${from}?done=paused`)).body).toContain(
      'Paused: no terminal is asked until it is resumed',
    );
    expect((await post(ada, `${from}/resume`, from)).status).toBe(303);
    expect((await page(ada, `${from}/cancel`)).body).toContain('This cannot be undone.');
    expect((await post(ada, `${from}/cancel`, from)).status).toBe(303);
    const view = (await cloud.api<DeploymentView>('GET', from.replace('/portal', '/v1'))).body;
    expect(view).toMatchObject({ state: 'cancelled', totals: { skipped: 2 } });
    const again = await post(ada, `${from}/resume`, from);
    expect(again.status).toBe(409);
    expect(again.body).toContain('invalid_state: a cancelled deployment cannot resume');
    const audit = await page(ada, '/portal/operators');
    expect(audit.body).toContain('deployment.cancel');
  });

  it('Collect logs from the terminal page: the bundle shows under Actions, as text, without the PAN', async () => {
    const sam = await session('sam');
    const tpage = `/portal/terminals/${a.terminalId}`;
    expect((await page(sam, tpage)).body).toContain('Collect logs (last hour)');
    const asked = await post(sam, `${tpage}/actions`, tpage, { type: 'collect_logs' });
    expect(asked.status).toBe(303);
    const list = await cloud.api<{ data: { id: string; type: string }[] }>(
      'GET',
      `/v1/terminals/${a.terminalId}/actions`,
    );
    const action = list.body.data.find((x) => x.type === 'collect_logs')!;
    await waitForAction(cloud, a.terminalId, action.id, (x) => x.status === 'completed', 'the logs uploaded');
    const link = `${tpage}/actions/${action.id}/logs`;
    await waitFor(
      async () => ((await page(sam, tpage)).body.includes(`href="${link}"`) ? true : undefined),
      'the logs link',
    );
    const logs = await page(sam, link);
    expect(logs.status).toBe(200);
    expect(String(logs.headers['content-type'])).toBe('text/plain; charset=utf-8');
    expect(logs.body).toMatch(/^# posagent logs /);
    expect(logs.body).toContain('link online');
    expect(logs.body).toContain('[card number removed]');
    expect(logs.body).not.toContain(PAN);
  });
});
