import { readFile } from 'node:fs/promises';
import { askDaemon } from '../local-api/local-api-client.js';
import type { AgentPaths } from '../settings.js';
import { buildStatusDocument, type StatusDocument } from './status-document.js';

/**
 * The status for the CLI: from the daemon's local API when it runs, else from the identity
 * files and the store opened read-only (`daemon: "stopped"`).
 */
export async function readStatus(
  paths: AgentPaths,
  softwareVersion: string,
  nowMs: number,
): Promise<StatusDocument> {
  const res = await askDaemon<StatusDocument>(paths.socketPath, 'GET', '/v1/status');
  if (res?.status === 200) return res.body;
  return readStatusWithoutDaemon(paths, softwareVersion, nowMs);
}

export async function readStatusWithoutDaemon(
  paths: AgentPaths,
  softwareVersion: string,
  nowMs: number,
): Promise<StatusDocument> {
  // Loaded here, not at the top: with the daemon up, `posagent status` loads neither crypto nor SQLite.
  const { readIdentity, readPairingState, summariseCertificate } = await import(
    '../../identity/identity-store.js'
  );
  const { openStoreReadOnly } = await import('../agent-store.js');
  const identity = await readIdentity(paths.stateDir);
  let notAfter: string | null = null;
  if (identity) {
    try {
      notAfter = summariseCertificate(await readFile(identity.paths.certFile, 'utf8'), nowMs).notAfter;
    } catch {
      notAfter = null;
    }
  }
  const reader = openStoreReadOnly(paths.dbFile);
  const stored = reader?.linkStatus() ?? null;
  const queue = reader?.transactions?.summary() ?? { stored: 0, oldestAt: null };
  const configVersion = reader?.appliedConfig()?.version ?? null;
  const locked = reader?.lock().locked ?? false;
  const deactivation = reader?.deactivation() ?? null;
  reader?.close();
  return buildStatusDocument({
    identity,
    daemon: 'stopped',
    link: {
      state: 'offline',
      since: stored?.since ?? null,
      reason: 'the daemon is not running',
      lastHeartbeatAt: stored?.lastHeartbeatAt ?? null,
    },
    certificateNotAfter: notAfter,
    pairing: identity ? null : await readPairingState(paths.stateDir),
    trustedTime: stored?.trustedTime ?? null,
    configVersion,
    queue,
    locked,
    deactivated:
      deactivation && identity && deactivation.terminalId === identity.terminalId ? deactivation : null,
    softwareVersion,
    nowMs,
  });
}
