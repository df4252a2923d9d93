import type { LinkSnapshot } from './link-state.js';

/**
 * The status document — one shape for `posagent status --json` and `GET /v1/status` (GUIDE §5.1).
 * Pure: built from what the caller read.
 */
export interface StatusDocument {
  enrolled: boolean;
  terminalId: string | null;
  name: string | null;
  locationId: string | null;
  daemon: 'running' | 'stopped';
  link: {
    state: LinkSnapshot['state'];
    since: string | null;
    lastHeartbeatAt: string | null;
    reason?: string;
  };
  certificate: { notAfter: string | null; daysLeft: number | null };
  config: { version: number | null };
  queue: { stored: number; oldestAt: string | null };
  locked: boolean;
  softwareVersion: string;
  cloudUrl: string | null;
}

export interface StatusInputs {
  identity: { terminalId: string; name: string; locationId: string; cloudUrl: string } | null;
  daemon: 'running' | 'stopped';
  link: (Omit<LinkSnapshot, 'since'> & { since: string | null }) | null;
  certificateNotAfter: string | null;
  configVersion: number | null;
  queue: { stored: number; oldestAt: string | null };
  locked: boolean;
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
    },
    config: { version: i.configVersion },
    queue: i.queue,
    locked: i.locked,
    softwareVersion: i.softwareVersion,
    cloudUrl: i.identity?.cloudUrl ?? null,
  };
}

/** The status in a few lines for a technician's screen (the Adyen three lines, then the rest). */
export function formatStatus(s: StatusDocument): string {
  const yes = (b: boolean) => (b ? 'yes' : 'no');
  const lines = [
    `Enrolled:         ${yes(s.enrolled)}${s.enrolled ? ` — ${s.name} (${s.terminalId}) at ${s.locationId}` : ''}`,
    `Daemon:           ${s.daemon}`,
    `Cloud link:       ${s.link.state}${s.link.since ? ` since ${s.link.since}` : ''}${s.link.reason ? ` — ${s.link.reason}` : ''}`,
    `Last heartbeat:   ${s.link.lastHeartbeatAt ?? 'never'}`,
    `Certificate:      ${s.certificate.notAfter ? `valid until ${s.certificate.notAfter} (${s.certificate.daysLeft} days left)` : 'none'}`,
    `Config version:   ${s.config.version ?? 'none applied'}`,
    `Queue:            ${s.queue.stored} stored${s.queue.oldestAt ? `, oldest ${s.queue.oldestAt}` : ''}`,
    `Locked:           ${yes(s.locked)}`,
    `Software:         ${s.softwareVersion}`,
  ];
  if (s.cloudUrl) lines.push(`Cloud:            ${s.cloudUrl}`);
  return lines.join('\n');
}
