import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { proxySettings } from '../cloud-access/proxy.js';
import { NO_SERIAL_MESSAGE, presentDevice } from '../enroll/device-presentation.js';
import { enrollWithSerial } from '../enroll/enrollment.js';
import { ensureDir } from '../files/atomic-file.js';
import { type Identity, readIdentity, readPairingState } from '../identity/identity-store.js';
import { Refusal } from '../protocol/refusal.js';
import type { AgentDeps, RunningAgent, SharedParts } from './agent-deps.js';
import type { EnrollmentProgress } from './events/event-map.js';
import { serveEvents } from './events/event-stream.js';
import { reconnectDelay } from './link/backoff.js';
import { cloudUrlsOf } from './link/cloud-addresses.js';
import { LocalApi } from './local-api/local-api.js';
import { backoffPolicy } from './settings.js';
import { buildStatusDocument, type StatusDocument } from './status/status-document.js';

/**
 * The daemon on a terminal that is not enrolled yet (first boot of a fresh image): it serves its
 * status on the local API — with the pairing code when `posagent enroll --pair` waits — enrolls
 * itself by serial when auto-enroll is set (retrying with backoff: the serial may be
 * pre-registered later), and as soon as an identity exists it starts as enrolled, in the same
 * process. systemd never has to restart it for that.
 */
export async function startUnenrolled(
  d: AgentDeps,
  shared: SharedParts,
  becomeEnrolled: (identity: Identity) => Promise<RunningAgent>,
  onFatal: (err: Error) => void,
): Promise<RunningAgent> {
  const { events, limits } = shared;
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
    throw new Refusal('not_enrolled', 'this terminal is not enrolled yet; no sale can be taken');
  };
  const api = new LocalApi(
    d.paths.socketPath,
    [
      {
        method: 'GET',
        pattern: /^\/v1\/status$/,
        handle: async () => statusNow(await readPairingState(d.paths.stateDir)),
      },
      // Enrollment and pairing progress (`enrollment` events), then everything else once enrolled.
      {
        method: 'GET',
        pattern: /^\/v1\/events$/,
        stream: serveEvents(events, { maxStreams: limits.streams, log: d.log }),
      },
      // The technician's checks, the network ones included when a cloud URL and CA are configured.
      {
        method: 'GET',
        pattern: /^\/v1\/diagnostics$/,
        handle: async () => {
          if (!d.diagnose)
            throw new Refusal('diagnostics_unavailable', 'diagnostics are not wired in this process');
          return d.diagnose(statusNow(await readPairingState(d.paths.stateDir)));
        },
      },
      { method: 'GET', pattern: /^\/v1\/errors$/, handle: () => ({ errors: shared.errors.list() }) },
      { method: 'POST', pattern: /^\/v1\/transactions$/, handle: notEnrolled },
      { method: 'GET', pattern: /^\/v1\/transactions(\/[^/]*)?$/, handle: notEnrolled },
      { method: 'GET', pattern: /^\/v1\/config$/, handle: notEnrolled },
    ],
    d.log,
    limits,
  );
  await api.start();
  // Serving its status and waiting to be enrolled is this daemon's normal, ready state.
  d.notifier?.ready(reason);
  d.log.warn({ stateDir: d.paths.stateDir, autoEnroll: d.settings.autoEnroll }, reason);
  const progress = (p: EnrollmentProgress) => events.publish('enrollment', p);
  progress({ state: d.settings.autoEnroll ? 'enrolling' : 'waiting', reason });
  let pairingSeen: string | null = null;

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
        progress({
          state: 'enrolled',
          terminalId: identity.terminalId,
          name: identity.name,
          locationId: identity.locationId,
        });
        await api.stop();
        d.log.info({ terminalId: identity.terminalId }, 'enrolled; starting');
        enrolled = await becomeEnrolled(identity);
        return;
      }
      // `posagent enroll --pair` (another process) shows a code: tell the app, and when it changes.
      const pairing = await readPairingState(d.paths.stateDir).catch(() => null);
      const pairingKey = pairing ? `${pairing.code} ${pairing.expiresAt}` : null;
      if (pairingKey !== pairingSeen) {
        pairingSeen = pairingKey;
        progress(
          pairing
            ? { state: 'pairing', code: pairing.code, expiresAt: pairing.expiresAt }
            : { state: 'waiting', reason },
        );
      }
      if (d.settings.autoEnroll && now() >= nextAutoAt) {
        try {
          await autoEnroll(d, (step) => progress({ state: 'enrolling', step }));
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
          progress({ state: 'failed', reason, retryInMs: delay });
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

async function autoEnroll(d: AgentDeps, onStep: (step: string) => void): Promise<void> {
  const s = d.settings;
  // Several gateways: each attempt (the caller retries with backoff) asks one of them at random.
  const urls = cloudUrlsOf(s, '');
  const cloudUrl = urls[Math.floor((d.random ?? Math.random)() * urls.length)] ?? '';
  if (!cloudUrl) throw new Error('set cloudUrl in the device settings for auto-enrollment');
  let caPem: string;
  try {
    caPem = await readFile(s.fleetCaFile, 'utf8');
  } catch (err) {
    throw new Error(`cannot read the fleet CA ${s.fleetCaFile} (${(err as NodeJS.ErrnoException).code})`);
  }
  const device = await presentDevice(s);
  const serialNumber = device.serialNumber;
  if (!serialNumber) throw new Error(`${NO_SERIAL_MESSAGE}; set serialNumber in the device settings`);
  const identity = await enrollWithSerial({
    stateDir: d.paths.stateDir,
    force: false,
    softwareVersion: d.softwareVersion,
    proxy: proxySettings(s, d.env ?? {}),
    cloudUrl,
    caPem,
    serialNumber,
    factory: device.factory,
    ...(device.model ? { model: device.model } : {}),
    onProgress: (step) => {
      d.log.info({ step }, 'auto-enrollment');
      onStep(step);
    },
  });
  d.log.info({ terminalId: identity.terminalId, serialNumber }, 'enrolled by pre-registered serial');
}
