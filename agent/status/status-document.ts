import { printable } from '../../protocol/printable.js';
import type { RenewalStatus } from '../certificate/cert-renewal.js';
import type { LinkSnapshot } from '../link/link-state.js';

/** A device clock this far behind the last time the cloud confirmed is reported as wrong. */
export const CLOCK_TOLERANCE_MS = 5 * 60_000;

/**
 * The status document — one shape for `posagent status --json` and `GET /v1/status` (GUIDE §5.1).
 * Pure: built from what the caller read.
 */
export interface StatusDocument {
  enrolled: boolean;
  terminalId: string | null;
  name: string | null;
  locationId: string | null;
  /** The store's and the organization's names, when the cloud gave them (Hello answer, TerminalUpdated). */
  locationName?: string;
  organizationSlug?: string;
  organizationName?: string;
  daemon: 'running' | 'stopped';
  link: {
    state: LinkSnapshot['state'];
    since: string | null;
    lastHeartbeatAt: string | null;
    reason?: string;
  };
  certificate: { notAfter: string | null; daysLeft: number | null; renewal?: RenewalStatus };
  /** A device waiting to be paired: the code to activate in the cloud. */
  pairing?: { code: string; expiresAt: string };
  /** Present when the device clock is behind the last time the cloud confirmed (no RTC, boot in 1970). */
  clock?: { behind: true; lastTrustedAt: string; deviceTime: string };
  config: { version: number | null };
  queue: { stored: number; oldestAt: string | null };
  locked: boolean;
  /** The cloud deactivated this terminal: no link, no sales, until it is enrolled again. */
  deactivated?: { at: string; reason: string };
  softwareVersion: string;
  cloudUrl: string | null;
}

export interface StatusInputs {
  identity: {
    terminalId: string;
    name: string;
    locationId: string;
    cloudUrl: string;
    locationName?: string | undefined;
    organizationSlug?: string | undefined;
    organizationName?: string | undefined;
  } | null;
  daemon: 'running' | 'stopped';
  link: (Omit<LinkSnapshot, 'since'> & { since: string | null }) | null;
  certificateNotAfter: string | null;
  renewal?: RenewalStatus;
  pairing?: { code: string; expiresAt: string } | null;
  trustedTime?: string | null;
  configVersion: number | null;
  queue: { stored: number; oldestAt: string | null };
  locked: boolean;
  deactivated?: { at: string; reason: string } | null;
  softwareVersion: string;
  nowMs: number;
}

export function buildStatusDocument(i: StatusInputs): StatusDocument {
  const link = i.link ?? { state: 'offline' as const, since: null, reason: null, lastHeartbeatAt: null };
  return {
    enrolled: i.identity !== null,
    terminalId: i.identity?.terminalId ?? null,
    name: i.identity?.name ?? null,
    locationId: i.identity?.locationId ?? null,
    ...(i.identity?.locationName ? { locationName: i.identity.locationName } : {}),
    ...(i.identity?.organizationSlug ? { organizationSlug: i.identity.organizationSlug } : {}),
    ...(i.identity?.organizationName ? { organizationName: i.identity.organizationName } : {}),
    daemon: i.daemon,
    link: {
      state: link.state,
      since: link.since,
      lastHeartbeatAt: link.lastHeartbeatAt,
      ...(link.reason ? { reason: link.reason } : {}),
    },
    certificate: {
      notAfter: i.certificateNotAfter,
      daysLeft:
        i.certificateNotAfter === null
          ? null
          : Math.floor((Date.parse(i.certificateNotAfter) - i.nowMs) / 86_400_000),
      ...(i.renewal ? { renewal: i.renewal } : {}),
    },
    ...(i.pairing ? { pairing: i.pairing } : {}),
    ...(i.trustedTime && Date.parse(i.trustedTime) - i.nowMs > CLOCK_TOLERANCE_MS
      ? {
          clock: {
            behind: true as const,
            lastTrustedAt: i.trustedTime,
            deviceTime: new Date(i.nowMs).toISOString(),
          },
        }
      : {}),
    config: { version: i.configVersion },
    queue: i.queue,
    locked: i.locked,
    ...(i.deactivated ? { deactivated: { at: i.deactivated.at, reason: i.deactivated.reason } } : {}),
    softwareVersion: i.softwareVersion,
    cloudUrl: i.identity?.cloudUrl ?? null,
  };
}

/** The status in a few lines for a technician's screen (the Adyen three lines, then the rest). */
export function formatStatus(s: StatusDocument): string {
  const yes = (b: boolean) => (b ? 'yes' : 'no');
  const lines = [
    `Enrolled:         ${yes(s.enrolled)}${s.enrolled ? ` — ${s.name} (${s.terminalId}) at ${s.locationName ? `${s.locationName} (${s.locationId})` : s.locationId}${s.organizationSlug ? `, ${s.organizationSlug}` : ''}` : ''}`,
    `Daemon:           ${s.daemon}`,
    `Cloud link:       ${s.link.state}${s.link.since ? ` since ${s.link.since}` : ''}${s.link.reason ? ` — ${s.link.reason}` : ''}`,
    `Last heartbeat:   ${s.link.lastHeartbeatAt ?? 'never'}`,
    `Certificate:      ${s.certificate.notAfter ? `valid until ${s.certificate.notAfter} (${s.certificate.daysLeft} days left)` : 'none'}`,
    `Config version:   ${s.config.version ?? 'none applied'}`,
    `Queue:            ${s.queue.stored} stored${s.queue.oldestAt ? `, oldest ${s.queue.oldestAt}` : ''}`,
    `Locked:           ${yes(s.locked)}`,
    `Software:         ${s.softwareVersion}`,
  ];
  if (s.pairing)
    lines.splice(
      1,
      0,
      `Pairing:          show code ${s.pairing.code} (activate it in the cloud before ${s.pairing.expiresAt})`,
    );
  if (s.certificate.renewal?.lastError)
    lines.push(
      `Renewal:          failing since ${s.certificate.renewal.lastErrorAt ?? '?'} — ${s.certificate.renewal.lastError}${s.certificate.renewal.nextAttemptAt ? `; next attempt ${s.certificate.renewal.nextAttemptAt} or when the link comes up` : ''}`,
    );
  if (s.clock)
    lines.push(
      `Clock:            behind — device ${s.clock.deviceTime}, cloud confirmed ${s.clock.lastTrustedAt}`,
    );
  if (s.deactivated)
    lines.push(
      `Deactivated:      ${s.deactivated.at} — ${s.deactivated.reason}; enroll again (posagent enroll --force …)`,
    );
  if (s.cloudUrl) lines.push(`Cloud:            ${s.cloudUrl}`);
  // Names and reasons come from the cloud: no control character reaches the technician's terminal.
  return lines.map(printable).join('\n');
}
