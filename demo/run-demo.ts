import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { localApiRequest } from '../agent/local-api/local-api-client.js';
import {
  addOperator,
  agentDirs,
  type Cloud,
  cli,
  enrollWithCli,
  newEnrollmentCode,
  POSAGENT,
  queueAction,
  restartCloud,
  startAgent,
  startCloud,
  tempDir,
  waitForAction,
  waitForLink,
} from '../harness/local-fleet.js';
import { waitFor } from '../harness/wait-for.js';
import { parseErrorBody } from '../protocol/refusal.js';

/**
 * `npm run demo`: the whole product on loopback, narrated. Real processes, real TLS, temp dirs.
 * Later features add their steps here.
 */
const bold = (s: string) => (process.stdout.isTTY ? `\u001b[1m${s}\u001b[0m` : s);
const dim = (s: string) => (process.stdout.isTTY ? `\u001b[2m${s}\u001b[0m` : s);
let stepNo = 0;
function step(text: string): void {
  process.stdout.write(`\n${bold(`${++stepNo}. ${text}`)}\n`);
}
function say(text: string): void {
  process.stdout.write(`   ${text.split('\n').join('\n   ')}\n`);
}
function show(value: unknown): void {
  say(dim(JSON.stringify(value, null, 2)));
}

/**
 * Everything the demo writes (the cloud's CA key and admin token, the terminals' keys, the stand-in
 * device) lives under one temp dir, removed at the end — also when a step fails or on Ctrl-C.
 * TMPDIR points into it, so every temp dir the helpers and the child processes make is in there.
 */
const root = mkdtempSync(join(tmpdir(), 'posagent-demo-'));
process.env.TMPDIR = root;
const cleanups: (() => unknown)[] = [];
let cleaned: Promise<void> | undefined;
const cleanUp = () => {
  cleaned ??= (async () => {
    for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => undefined);
    rmSync(root, { recursive: true, force: true });
  })();
  return cleaned;
};
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.once(signal, () => {
    void cleanUp().then(() => process.exit(130));
  });

/** `npm run demo -- --keep`: the cloud and an agent stay up at the end, to click through the portal. */
const keep = process.argv.includes('--keep');

async function main(): Promise<void> {
  const started = Date.now();
  try {
    step('Start the reference cloud (posagent-cloud serve) on loopback');
    let cloud: Cloud = await startCloud(['--heartbeat-interval', '2']);
    cleanups.push(() => cloud.stop());
    say(
      `Listening at ${cloud.url}. On first start it made its fleet CA, a server certificate and an admin token.`,
    );
    say(`Fleet CA: ${cloud.caFile}`);

    step('Make a support portal operator (posagent-cloud user add demo --role admin)');
    const operatorPassword = randomBytes(12).toString('base64url');
    await addOperator(cloud, 'demo', 'admin', operatorPassword);
    say(`Support portal: ${cloud.url}/portal/ — sign in as demo / ${operatorPassword}`);
    say('(the password came on stdin; the cloud keeps only its scrypt hash)');

    step('Create a location and an enrollment code through the fleet REST API');
    const { code, locationId, expiresAt } = await newEnrollmentCode(cloud, 'Front Register 1');
    say(`POST /v1/locations → ${locationId}`);
    say(
      `POST /v1/enrollment-codes → code ${bold(code)} for "Front Register 1", valid until ${new Date(expiresAt * 1000).toISOString()}`,
    );

    step('Enroll the terminal with the code (posagent enroll --code …)');
    const dirs = agentDirs();
    cleanups.push(() => rmSync(dirs.stateDir, { recursive: true, force: true }));
    const enroll = await enrollWithCli(cloud, code, dirs);
    if (enroll.code !== 0) throw new Error(`enrollment failed: ${enroll.stdout}${enroll.stderr}`);
    const enrolled = enroll.json<{
      terminalId: string;
      locationId: string;
      certificate: { notAfter: string };
    }>();
    say(
      'The key pair was made on the device; only a CSR went to the cloud. It answered with a client certificate:',
    );
    show(enrolled);

    step('Start the agent daemon (posagent run)');
    const t0 = Date.now();
    // The device's reboot command and boot id source: stand-ins that record, so the demo never reboots this machine.
    const device = tempDir('device');
    const bootIdFile = join(device, 'boot_id');
    const rebootLog = join(device, 'reboots.log');
    writeFileSync(bootIdFile, 'boot-1\n');
    writeFileSync(join(device, 'reboot'), `#!/bin/sh\necho "reboot requested" >> ${rebootLog}\n`, {
      mode: 0o755,
    });
    const deviceFlags = ['--reboot-command', join(device, 'reboot'), '--boot-id-file', bootIdFile];
    let agent = startAgent(dirs, deviceFlags);
    cleanups.push(() => {
      agent.child.kill('SIGKILL');
      return agent.exited;
    });
    const terminal = await waitFor(async () => {
      const r = await cloud.api<{ status: string; connected: boolean; lastSeen: number | null }>(
        'GET',
        `/v1/terminals/${enrolled.terminalId}`,
      );
      return r.body.status === 'online' && r.body.connected ? r.body : undefined;
    }, 'the terminal online in the cloud');
    say(
      `Online in the cloud ${Date.now() - t0} ms after the process started (mTLS WebSocket, Hello, first heartbeat).`,
    );
    say('GET /v1/terminals/{id}:');
    const { health: _health, ...summary } = terminal as Record<string, unknown>;
    show(summary);

    step('Ask the terminal itself (posagent status, through its local API on a Unix socket)');
    const status = await cli(['status', ...dirs.flags]);
    say(status.stdout.trimEnd());

    step('Push configuration: a location template, then a per-terminal override (VINR configure)');
    await cloud.api('PUT', `/v1/locations/${locationId}/terminal-config`, {
      tip: { mode: 'percentage', suggestions: [10, 15, 20] },
      receipt: { channels: ['print', 'email'], requireConsent: true },
      display: { idleMessage: 'Welcome to Acme Coffee' },
      offlineMode: { enabled: true, maxAmount: 5000, maxQueue: 50 },
    });
    say('PUT /v1/locations/{id}/terminal-config → every terminal there gets a new config version.');
    await cloud.api('POST', `/v1/terminals/${enrolled.terminalId}/configure`, {
      display: { idleMessage: 'Front Register 1 — tap to pay' },
    });
    say(
      'POST /v1/terminals/{id}/configure {display: {idleMessage: …}} → an override on top of the template.',
    );
    const applied = await waitFor(async () => {
      const c = await cloud.api<{ version: number; appliedVersion: number | null; status: string }>(
        'GET',
        `/v1/terminals/${enrolled.terminalId}/config`,
      );
      return c.body.status === 'applied' && c.body.appliedVersion === c.body.version ? c.body : undefined;
    }, 'the config applied');
    say(
      `The agent validated, stored and applied version ${applied.version}, and acknowledged it: cloud says ${applied.status}.`,
    );
    const local = (await cli(['config', '--json', ...dirs.flags])).json<{
      version: number;
      config: { tip: unknown; display: unknown };
    }>();
    say(
      `posagent config on the device: version ${local.version}, what the POS app reads from GET /v1/config:`,
    );
    show({ tip: local.config.tip, display: local.config.display });
    const bad = await cloud.api<unknown>('POST', `/v1/terminals/${enrolled.terminalId}/configure`, {
      tip: { suggestions: [5, 10, 15, 20, 25] },
    });
    say(`An invalid push is refused with the field path: ${bad.status} ${parseErrorBody(bad.body)?.message}`);

    step(
      'A sale online: the POS app hands a transaction to the agent (POST /v1/transactions on the Unix socket)',
    );
    const socket = `${dirs.runtimeDir}/api.sock`;
    const sale = {
      id: randomUUID(),
      amount: 1250,
      currency: 'EUR',
      card: { pan: '4111111111111111', expiry: '12/29' },
    };
    const stored = await localApiRequest<{ state: string; seq: number }>(
      socket,
      'POST',
      '/v1/transactions',
      sale,
    );
    say(
      `${stored.status} ${JSON.stringify(stored.body)} — answered only after the row was committed (synchronous=FULL).`,
    );
    say("The card was sealed to the cloud's data key before it was stored; the agent cannot read it back.");
    const decided = await waitFor(async () => {
      const r = await localApiRequest<{ state: string }>(socket, 'GET', `/v1/transactions/${sale.id}`);
      return r.body.state === 'authorised' ? r.body : undefined;
    }, 'authorised');
    say(`Forwarded, then the cloud's decision came back: ${decided.state}.`);

    step('The cloud goes away (killed): two offline sales, one refused by the offline limits');
    cloud.proc.child.kill('SIGKILL');
    await cloud.proc.exited;
    await waitForLink(dirs, (s) => s !== 'online');
    const offlineSale = { id: randomUUID(), amount: 800, currency: 'EUR' };
    const r1 = await localApiRequest<{ state: string; offline: boolean }>(
      socket,
      'POST',
      '/v1/transactions',
      offlineSale,
    );
    say(
      `800 EUR → ${r1.status} ${r1.body.state}, offline: ${r1.body.offline} (offline mode is on in the location template, maxAmount 5000).`,
    );
    const r2 = await localApiRequest<unknown>(socket, 'POST', '/v1/transactions', {
      id: randomUUID(),
      amount: 6000,
      currency: 'EUR',
    });
    const e2 = parseErrorBody(r2.body);
    say(`6000 EUR → ${r2.status} ${e2?.code}: ${e2?.message}`);
    say((await cli(['queue', ...dirs.flags])).stdout.trimEnd());

    step('The cloud comes back: the queue is forwarded in order, exactly once, and decided');
    cloud = await restartCloud(cloud);
    await cli(['queue', 'flush', ...dirs.flags]);
    say('posagent queue flush: reconnect now instead of waiting out the backoff.');
    await waitFor(
      async () =>
        (await localApiRequest<{ state: string }>(socket, 'GET', `/v1/transactions/${offlineSale.id}`)).body
          .state === 'authorised',
      'offline sale authorised',
    );
    const ledger = await cloud.api<{
      data: { id: string; amount: number; status: string; offline: boolean; card: unknown }[];
    }>('GET', `/v1/transactions?terminalId=${enrolled.terminalId}`);
    say('GET /v1/transactions?terminalId=… in the cloud (it keeps only the last four digits of a card):');
    show(
      ledger.body.data.map(({ id, amount, status, offline, card }) => ({
        id,
        amount,
        status,
        offline,
        card,
      })),
    );

    step('Restart the cloud; the agent comes back by itself');
    await cloud.stop();
    say(
      'Cloud stopped. It closed every link with 1012 "restarting", so agents spread their first retry over a',
    );
    say('random 0–10 s (this demo sets POSAGENT_RESTART_SPREAD_MS=500 to keep the walk short).');
    cloud = await restartCloud(cloud);
    const t1 = Date.now();
    await waitFor(
      async () =>
        (await cloud.api<{ connected: boolean }>('GET', `/v1/terminals/${enrolled.terminalId}`)).body
          .connected,
      'reconnect',
      30_000,
    );
    say(`Cloud back at ${cloud.url}; the terminal reconnected ${Date.now() - t1} ms later.`);

    step('Renew the certificate now (posagent cert --renew): a new key, the link comes back with it');
    const renewed = await cli(['cert', '--renew', '--json', ...dirs.flags]);
    if (renewed.code !== 0) throw new Error(`renewal failed: ${renewed.stdout}`);
    const r = renewed.json<{
      fingerprint: string;
      notAfter: string;
      via: string;
      previous: { fingerprint: string };
    }>();
    say(
      `Renewed through the ${r.via}: ${r.previous.fingerprint.slice(0, 16)}… → ${r.fingerprint.slice(0, 16)}…, valid until ${r.notAfter}.`,
    );
    await waitForLink(dirs);
    say('Link online again with the new certificate; the old one is refused by the cloud from now on.');

    step('A second terminal enrolls by scanning a QR code (posagent enroll --qr): no URL or CA file to type');
    const qr = await cloud.api<{ qrPayload: string }>('POST', '/v1/enrollment-codes', {
      locationId: enrolled.locationId,
      terminalName: 'Till 2',
    });
    say(`QR payload: ${qr.body.qrPayload.slice(0, 72)}…`);
    const second = agentDirs();
    cleanups.push(() => rmSync(second.stateDir, { recursive: true, force: true }));
    const byQr = await cli(['enroll', '--qr', qr.body.qrPayload, '--json', ...second.flags]);
    if (byQr.code !== 0) throw new Error(`QR enrollment failed: ${byQr.stdout}`);
    say(
      `Enrolled as ${byQr.json<{ name: string; terminalId: string }>().name} (${byQr.json<{ terminalId: string }>().terminalId}); the fleet CA was fetched and checked against the fingerprint in the QR.`,
    );

    step('A technician checks the terminal (posagent diagnostics): the PeakPOS checklist in one command');
    const diag = await cli([
      'diagnostics',
      '--json',
      ...dirs.flags,
      '--settings',
      join(dirs.stateDir, '..', 'agent.json'),
    ]);
    const report = diag.json<{ checks: { id: string; status: string }[]; summary: Record<string, number> }>();
    say(report.checks.map((c) => `${c.status.toUpperCase()} ${c.id}`).join(' · '));
    say(
      `${report.summary.pass} passed, ${report.summary.warn} warnings, ${report.summary.fail} failed — it works with the daemon stopped too; \`posagent menu\` is the same on a keyboard screen.`,
    );

    step('Lock the terminal from the cloud (POST /v1/terminals/{id}/actions {type: "lock"})');
    const createAction = async (type: string) => (await queueAction(cloud, enrolled.terminalId, { type })).id;
    const finished = (a: { status: string }) => a.status === 'completed' || a.status === 'failed';
    const actionWhen = (id: string, ok: (a: { status: string }) => boolean) =>
      waitForAction(cloud, enrolled.terminalId, id, ok, `action ${id}`);
    const runAction = async (type: string) => actionWhen(await createAction(type), finished);
    say(`lock → ${(await runAction('lock')).status}; the lock is kept in the store and survives restarts.`);
    const refused = await localApiRequest<unknown>(socket, 'POST', '/v1/transactions', {
      id: randomUUID(),
      amount: 300,
      currency: 'EUR',
    });
    const locked = parseErrorBody(refused.body);
    say(`A sale while locked → ${refused.status} ${locked?.code}: ${locked?.message}`);
    say(`unlock → ${(await runAction('unlock')).status}; sales are accepted again.`);

    step(
      'Reboot the terminal from the cloud (the reboot command here is a stand-in that records the request)',
    );
    const rebootId = await createAction('reboot');
    await waitFor(() => existsSync(rebootLog), 'the reboot command');
    say('The agent waited for busy leases (none), recorded the boot id, and ran the reboot command.');
    agent.child.kill('SIGKILL');
    await agent.exited;
    writeFileSync(bootIdFile, 'boot-2\n');
    agent = startAgent(dirs, deviceFlags);
    const rebooted = await actionWhen(rebootId, finished);
    say(
      `"Device" back with a new boot id: the action is ${rebooted.status} (step ${rebooted.step}). A start under the same boot id would have failed it.`,
    );

    step(
      'Stop the agent (SIGTERM): it closes its link with a close frame, so the cloud marks it offline at once',
    );
    agent.child.kill('SIGTERM');
    const exit = await agent.exited;
    const after = await waitFor(async () => {
      const r = await cloud.api<{ status: string }>('GET', `/v1/terminals/${enrolled.terminalId}`);
      return r.body.status === 'offline' ? r.body.status : undefined;
    }, 'offline');
    say(`Agent exited with code ${exit.code}; cloud status: ${after}.`);
    const down = await cli(['status', '--json', ...dirs.flags]);
    const doc = down.json<{ daemon: string; link: { lastHeartbeatAt: string } }>();
    say(
      `posagent status with the daemon down reads the store: daemon ${doc.daemon}, last heartbeat ${doc.link.lastHeartbeatAt}.`,
    );

    step('Done');
    say(
      `The whole walk took ${((Date.now() - started) / 1000).toFixed(1)} s. Run \`npm test\` for the test suite, \`npm run bench\` for the figures.`,
    );
    say(`Try it by hand: node ${POSAGENT.replace(`${process.cwd()}/`, '')} --help`);
    if (keep) {
      agent = startAgent(dirs, deviceFlags);
      cleanups.push(() => agent.child.kill('SIGKILL'));
      step('Left running (--keep): click through the support portal');
      say(`${cloud.url}/portal/ — operator demo, password ${operatorPassword}`);
      say(
        "The browser warns about the certificate: it is signed by this demo's own fleet CA\n" +
          `(${cloud.caFile}); accept it for this address. Ctrl-C stops everything and removes the temp dir.`,
      );
      await new Promise<never>(() => {});
    }
  } finally {
    await cleanUp();
  }
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    process.stderr.write(`\ndemo failed: ${err.message}\n`);
    process.exit(1);
  },
);
