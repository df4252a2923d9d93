import { join } from 'node:path';
import { ActionService } from '../../cloud/actions/action-service.js';
import { type CloudEvents, EventBus } from '../../cloud/cloud-events.js';
import {
  CLOUD_DEFAULTS,
  type CloudOptions,
  configDefaultsOf,
  enrollmentLimitsOf,
} from '../../cloud/cloud-options.js';
import { EnrollmentService } from '../../cloud/enrollment/enrollment-service.js';
import { FleetService } from '../../cloud/fleet/fleet-service.js';
import { AgentLinks } from '../../cloud/gateway/agent-links.js';
import { LinkRouter } from '../../cloud/gateway/link-router.js';
import { FleetCa } from '../../cloud/identity/fleet-ca.js';
import { openSqliteStore } from '../../cloud/store/sqlite/sqlite-store.js';
import { Refusal } from '../../protocol/refusal.js';
import { tempDir } from '../support/processes.js';

/** A log that keeps what was said (a test reads it; nothing is printed). */
export function recordingLog() {
  const lines: { level: string; msg: string; obj: object }[] = [];
  const at =
    (level: string) =>
    (obj: object, msg = '') =>
      void lines.push({ level, msg, obj });
  return { lines, info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug') };
}

/** The refusal `fn` throws, for a closer look; fails when it throws none or something else. */
export async function refusalOf(fn: () => unknown): Promise<Refusal> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof Refusal) return err;
    throw err;
  }
  throw new Error('expected a refusal');
}

let sharedCa: Promise<FleetCa> | undefined;

/**
 * The cloud's services in-process over a real SQLite file, wired as cloud/main.ts wires them —
 * no listener, no gateway: `links` is the real (empty) registry, so every terminal is offline.
 * The clock is the test's.
 */
export async function cloudRig() {
  const clock = { ms: Date.parse('2026-06-01T12:00:00Z') };
  const now = () => clock.ms;
  const dir = tempDir('cloud-rig');
  const store = openSqliteStore(join(dir, 'cloud.db'));
  const bus = new EventBus<CloudEvents>();
  const events: { name: keyof CloudEvents; payload: unknown }[] = [];
  for (const name of [
    'terminal.enrolled',
    'terminal.deactivated',
    'terminal.link',
    'terminal.profile',
    'config.desired',
    'action.queued',
    'action.finished',
  ] as const)
    bus.on(name, (payload) => {
      events.push({ name, payload });
    });
  const log = recordingLog();
  const o: CloudOptions = { ...CLOUD_DEFAULTS, dataDir: dir };
  sharedCa ??= FleetCa.create('rig fleet CA', new Date(clock.ms)).then((c) => c.ca);
  const ca = await sharedCa;
  const links = new AgentLinks();
  // The router of a cloud with no gateway in it: no link is open, every terminal is offline.
  const router = new LinkRouter({
    gatewayId: 'gw_rig',
    store,
    local: links,
    gateway: () => {
      throw new Error('the rig has no gateway');
    },
    now,
    leaseMs: 10_000,
    sweepMs: 1_000,
    routeGraceMs: 1_000,
    log,
  });
  const fleet = new FleetService({
    store,
    now,
    thresholds: { atRiskAfterMs: 900_000, offlineAfterMs: 1_800_000 },
    links: router,
    events: bus,
    configDefaults: configDefaultsOf(o),
    log,
  });
  const enrollment = new EnrollmentService({
    store,
    ca,
    now,
    cloudUrl: () => 'https://cloud.test:1',
    certDays: 90,
    pairingTtlSec: 600,
    pairingPollMs: 1000,
    dataPublicKey: 'data-key',
    ...enrollmentLimitsOf(o),
    expiredCodeRetentionMs: 86_400_000,
    sweepMs: 5000,
    events: bus,
    log,
  });
  const actions = new ActionService({ store, now, defaultTtlSec: 86_400, sweepMs: 5000, events: bus, log });
  bus.on('terminal.enrolled', async (e) => await fleet.enrolled(e.terminalId, e.replaces));
  return { clock, store, bus, events, log, fleet, enrollment, actions, links, dir, ca };
}
