import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { ensureDir } from '../enroll/atomic-file.js';
import { enrollWithSerial } from '../enroll/enrollment.js';
import { readHardwareSerial } from '../enroll/hardware-serial.js';
import { type Identity, readIdentity, readPairingState } from '../enroll/identity-store.js';
import { proxySettings } from '../enroll/proxy.js';
import { reconnectDelay } from './backoff.js';
import { LocalApi, LocalApiError } from './local-api.js';
import type { AgentDeps, RunningAgent } from './main.js';
import { backoffPolicy } from './settings.js';
import { buildStatusDocument, type StatusDocument } from './status-document.js';

/**
 * The daemon on a terminal that is not enrolled yet (first boot of a fresh image): it serves its
 * status on the local API — with the pairing code when `posagent enroll --pair` waits — enrolls
 * itself by serial when auto-enroll is set (retrying with backoff: the serial may be
 * pre-registered later), and as soon as an identity exists it starts as enrolled, in the same
 * process. systemd never has to restart it for that.
 */
export async function startUnenrolled(
  d: AgentDeps,
  becomeEnrolled: (identity: Identity) => Promise<RunningAgent>,
  onFatal: (err: Error) => void,
): Promise<RunningAgent> {
  const now = d.now ?? Date.now;
  const since = new Date(now()).toISOString();
  let reason = d.settings.autoEnroll
    ? 'not enrolled: enrolling by serial number (auto-enroll)'
    : 'not enrolled: waiting for enrollment (posagent enroll …)';
  const statusNow = (pairing: { code: string; expiresAt: string } | null): StatusDocument =>
    buildStatusDocument({
      identity: null,
      daemon: 'running',
      link: { state: d.settings.autoEnroll ? 'connecting' : 'offline', since, reason, lastHeartbeatAt: null },
      certificateNotAfter: null,
      configVersion: null,
      queue: { stored: 0, oldestAt: null },
      locked: false,
      softwareVersion: d.softwareVersion,
      nowMs: now(),
      pairing,
    });
  await ensureDir(d.paths.runtimeDir, 0o750);
  const notEnrolled = () => {
    throw new LocalApiError(503, 'not_enrolled', 'this terminal is not enrolled yet; no sale can be taken');
  };
  const api = new LocalApi(
    d.paths.socketPath,
    [
      {
        method: 'GET',
        pattern: /^\/v1\/status$/,
        handle: async () => statusNow(await readPairingState(d.paths.stateDir)),
      },
      { method: 'POST', pattern: /^\/v1\/transactions$/, handle: notEnrolled },
      { method: 'GET', pattern: /^\/v1\/config$/, handle: notEnrolled },
    ],
    d.log,
  );
  await api.start();
  // Serving its status and waiting to be enrolled is this daemon's normal, ready state.
  d.notifier?.ready(reason);
  d.log.warn({ stateDir: d.paths.stateDir, autoEnroll: d.settings.autoEnroll }, reason);

  const stop = new AbortController();
  let enrolled: RunningAgent | null = null;
  const done = (async () => {
    let failures = 0;
    let nextAutoAt = 0;
    while (!stop.signal.aborted) {
      const identity = await readIdentity(d.paths.stateDir).catch((err: unknown) => {
        d.log.error({ err }, 'reading the identity failed; looking again in a second');
        return null;
      });
      if (identity) {
        await api.stop();
        d.log.info({ terminalId: identity.terminalId }, 'enrolled; starting');
        enrolled = await becomeEnrolled(identity);
        return;
      }
      if (d.settings.autoEnroll && now() >= nextAutoAt) {
        try {
          await autoEnroll(d);
          continue;
        } catch (err) {
          failures++;
          reason = `not enrolled: auto-enrollment failed: ${(err as Error).message}`;
          const delay = reconnectDelay(
            { attempt: failures, cloudRestarted: false },
            backoffPolicy(d.settings),
            d.random ?? Math.random,
          );
          nextAutoAt = now() + delay;
          d.log.warn({ err: (err as Error).message, retryInMs: delay }, 'auto-enrollment failed; will retry');
        }
      }
      await sleep(1000, undefined, { signal: stop.signal }).catch(() => {});
    }
  })().catch((err: Error) => onFatal(err));

  return {
    status: () => enrolled?.status() ?? statusNow(null),
    async stop() {
      stop.abort();
      await done;
      if (enrolled) await enrolled.stop();
      else await api.stop();
    },
  };
}

async function autoEnroll(d: AgentDeps): Promise<void> {
  const s = d.settings;
  if (!s.cloudUrl) throw new Error('set cloudUrl in the device settings for auto-enrollment');
  let caPem: string;
  try {
    caPem = await readFile(s.fleetCaFile, 'utf8');
  } catch (err) {
    throw new Error(`cannot read the fleet CA ${s.fleetCaFile} (${(err as NodeJS.ErrnoException).code})`);
  }
  const serialNumber = s.serialNumber || (await readHardwareSerial());
  if (!serialNumber)
    throw new Error('the hardware did not report a serial number; set serialNumber in the device settings');
  const identity = await enrollWithSerial({
    stateDir: d.paths.stateDir,
    force: false,
    softwareVersion: d.softwareVersion,
    proxy: proxySettings(s, d.env ?? {}),
    cloudUrl: s.cloudUrl,
    caPem,
    serialNumber,
    onProgress: (step) => d.log.info({ step }, 'auto-enrollment'),
  });
  d.log.info({ terminalId: identity.terminalId, serialNumber }, 'enrolled by pre-registered serial');
}
