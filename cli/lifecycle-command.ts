import { readFile, rm } from 'node:fs/promises';
import { openStoreReadOnly } from '../agent/agent-store.js';
import type { RenewalStatus } from '../agent/certificate/cert-renewal.js';
import { firstCloudUrl } from '../agent/link/cloud-addresses.js';
import { askDaemon, localApiRequest } from '../agent/local-api/local-api-client.js';
import { type AgentPaths, resolvePaths } from '../agent/settings.js';
import { CloudRequestError, cloudJson } from '../cloud-access/cloud-client.js';
import { proxySettings } from '../cloud-access/proxy.js';
import { EnrollmentError } from '../enroll/enrollment.js';
import { renewDirect } from '../enroll/renewal.js';
import {
  type CertificateSummary,
  type Identity,
  readClientTls,
  removeIdentity,
  summariseCertificate,
} from '../identity/identity-store.js';
import { parseErrorBody } from '../protocol/refusal.js';
import { keepTlsSessions, loadDeviceSettings } from './device-settings.js';
import { requireEnrolled } from './enrolled.js';
import { CommandError, ExitCode, type Output } from './output.js';

/**
 * The identity's lifecycle on the device: `posagent cert [--renew]`, `posagent reprovision`,
 * `posagent decommission [--force]`. Through the daemon when it runs (it owns the link), directly
 * otherwise.
 */
interface Common {
  stateDir?: string;
  runtimeDir?: string;
  settings?: string;
}

const enrolledIdentity = requireEnrolled;

type CertificateDocument = CertificateSummary & { renewal?: RenewalStatus };

async function currentCertificate(paths: AgentPaths, identity: Identity): Promise<CertificateDocument> {
  const res = await askDaemon<CertificateDocument>(paths.socketPath, 'GET', '/v1/certificate');
  if (res?.status === 200) return res.body;
  return summariseCertificate(await readFile(identity.paths.certFile, 'utf8'), Date.now());
}

/** Renews through the daemon when it runs, else over HTTPS with the current certificate. */
async function renew(
  paths: AgentPaths,
  identity: Identity,
  settingsFile: string | undefined,
  out: Output,
): Promise<{ before: CertificateSummary; after: CertificateSummary; via: 'daemon' | 'direct' }> {
  const running = await askDaemon(paths.socketPath, 'GET', '/v1/status');
  if (running) {
    if (!out.json) out.progress('… asking the daemon to renew over its link (new key, new certificate)');
    const res = await localApiRequest<{ before: CertificateSummary; after: CertificateSummary }>(
      paths.socketPath,
      'POST',
      '/v1/certificate/renew',
      undefined,
      60_000,
    );
    if (res.status !== 200) {
      const e = parseErrorBody(res.body);
      throw new CommandError(e?.code ?? 'renewal_failed', e?.message ?? `the daemon answered ${res.status}`);
    }
    return { ...res.body, via: 'daemon' };
  }
  const { settings } = await loadDeviceSettings(settingsFile, {});
  keepTlsSessions(settings, paths.stateDir);
  if (!out.json) out.progress('… the daemon is not running: renewing directly (new key, new certificate)');
  try {
    const r = await renewDirect(
      identity,
      paths.stateDir,
      firstCloudUrl(settings, identity),
      proxySettings(settings, process.env),
    );
    return { ...r, via: 'direct' };
  } catch (err) {
    if (err instanceof EnrollmentError)
      throw new CommandError(
        err.code,
        `renewal failed: ${err.message}`,
        ExitCode.failed,
        err.code === 'certificate_superseded' || err.code === 'terminal_deactivated'
          ? 'this identity is no longer accepted by the cloud; enroll again (posagent enroll --force …)'
          : undefined,
      );
    throw err;
  }
}

function describe(c: CertificateDocument): string {
  return [
    `Subject:       ${c.subject.replace(/\n/g, ', ')}`,
    `Serial:        ${c.serialNumber}`,
    `Valid:         ${c.notBefore} → ${c.notAfter} (${c.daysLeft} days left)`,
    `Fingerprint:   ${c.fingerprint} (SHA-256)`,
    ...(c.renewal
      ? [
          `Renewal:       ${c.renewal.state}${c.renewal.lastRenewedAt ? `, last renewed ${c.renewal.lastRenewedAt}` : ''}${c.renewal.lastError ? ` — ${c.renewal.lastError}` : ''}`,
        ]
      : []),
  ].join('\n');
}

export async function certCommand(opts: Common & { renew?: boolean }, out: Output): Promise<number> {
  const paths = resolvePaths(opts, process.env);
  const identity = await enrolledIdentity(paths);
  if (!opts.renew) {
    const c = await currentCertificate(paths, identity);
    out.result(c, () => describe(c));
    return ExitCode.ok;
  }
  const r = await renew(paths, identity, opts.settings, out);
  const doc = {
    ...r.after,
    previous: { fingerprint: r.before.fingerprint, notAfter: r.before.notAfter },
    via: r.via,
  };
  out.result(
    doc,
    () => `Certificate renewed with a new key.\n${describe(r.after)}\nPrevious:      ${r.before.fingerprint}`,
  );
  return ExitCode.ok;
}

export async function reprovisionCommand(opts: Common, out: Output): Promise<number> {
  const paths = resolvePaths(opts, process.env);
  const identity = await enrolledIdentity(paths);
  const r = await renew(paths, identity, opts.settings, out);
  const doc = {
    terminalId: identity.terminalId,
    name: identity.name,
    certificate: r.after,
    previousFingerprint: r.before.fingerprint,
    via: r.via,
  };
  out.result(doc, () =>
    [
      `Reprovisioned ${identity.name} (${identity.terminalId}): new key and certificate, same terminal, config and queue.`,
      `Certificate valid until ${r.after.notAfter}; fingerprint ${r.after.fingerprint}.`,
    ].join('\n'),
  );
  return ExitCode.ok;
}

export async function decommissionCommand(opts: Common & { force?: boolean }, out: Output): Promise<number> {
  const paths = resolvePaths(opts, process.env);
  const identity = await enrolledIdentity(paths);
  // The lock, not the socket: a daemon started with another runtime dir is still this state dir's.
  const { daemonHoldsLock } = await import('../agent/daemon-lock.js');
  const held = daemonHoldsLock(paths.stateDir);
  if (held.held || (await askDaemon(paths.socketPath, 'GET', '/v1/status')))
    throw new CommandError(
      'daemon_running',
      `the daemon${held.pid ? ` (pid ${held.pid})` : ''} is running on this state dir; stop it first (systemctl stop posagent)`,
      ExitCode.refused,
    );
  const reader = openStoreReadOnly(paths.dbFile);
  const unsent = reader?.transactions?.summary().stored ?? 0;
  reader?.close();
  if (unsent > 0 && !opts.force)
    throw new CommandError(
      'unsent_transactions',
      `${unsent} transaction(s) have not reached the cloud; decommissioning now would lose them`,
      ExitCode.refused,
      'bring the terminal online until `posagent queue` shows none stored, or pass --force to discard them',
    );
  // Tell the cloud (best effort): the terminal shows as deactivated and its certificate is refused.
  let cloud: { deactivated: boolean; reason?: string };
  try {
    const { settings } = await loadDeviceSettings(opts.settings, {});
    const { key, cert, ca } = await readClientTls(identity);
    await cloudJson({
      cloudUrl: firstCloudUrl(settings, identity),
      caPem: ca,
      cert,
      key,
      method: 'POST',
      path: '/v1/agent/decommission',
      timeoutMs: 5000,
      proxy: proxySettings(settings, process.env),
    });
    cloud = { deactivated: true };
  } catch (err) {
    cloud = {
      deactivated: false,
      reason: err instanceof CloudRequestError || err instanceof CommandError ? err.message : String(err),
    };
  }
  await removeIdentity(paths.stateDir);
  for (const f of [paths.dbFile, `${paths.dbFile}-wal`, `${paths.dbFile}-shm`]) await rm(f, { force: true });
  const doc = { decommissioned: true, terminalId: identity.terminalId, discardedTransactions: unsent, cloud };
  out.result(doc, () =>
    [
      `Decommissioned ${identity.name} (${identity.terminalId}): key, certificates and queue wiped.`,
      cloud.deactivated
        ? 'The cloud was told: the terminal shows as deactivated.'
        : `The cloud could not be told (${cloud.reason}); deactivate ${identity.terminalId} there.`,
      ...(unsent > 0 ? [`${unsent} unsent transaction(s) were discarded (--force).`] : []),
    ].join('\n'),
  );
  return ExitCode.ok;
}
