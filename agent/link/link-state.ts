/**
 * The cloud link's state machine. States and transitions in plain sight; anything else is a bug.
 *
 *   offline ──connect──▶ connecting ──helloAcked──▶ online
 *      ▲                    │  │                      │
 *      └──────lost──────────┘  └──refused──▶ error ◀──┤ refused
 *      ▲                                       │      │
 *      └──────────────────lost─────────────────┼──────┘
 *   error ──connect──▶ connecting; any ──stop──▶ offline; any ──deactivated──▶ error (final)
 *
 * `lost`: network gone, cloud closed, liveness lost — retrying will likely help.
 * `refused`: the cloud or TLS said no (untrusted cloud, certificate refused) — needs attention,
 * still retried with backoff.
 * `deactivated`: the cloud deactivated this terminal — the link stops for good (no retry) and
 * stays `error` until the terminal is enrolled again.
 */
export type LinkState = 'offline' | 'connecting' | 'online' | 'error';
export type LinkEvent = 'connect' | 'helloAcked' | 'lost' | 'refused' | 'stop' | 'deactivated';

export const LINK_TRANSITIONS: Readonly<Record<LinkState, Partial<Record<LinkEvent, LinkState>>>> = {
  offline: { connect: 'connecting', stop: 'offline', deactivated: 'error' },
  connecting: {
    helloAcked: 'online',
    lost: 'offline',
    refused: 'error',
    stop: 'offline',
    deactivated: 'error',
  },
  online: { lost: 'offline', refused: 'error', stop: 'offline', deactivated: 'error' },
  error: { connect: 'connecting', stop: 'offline', deactivated: 'error' },
};

export class InvalidTransitionError extends Error {
  override readonly name = 'InvalidTransitionError';
}

export function nextLinkState(state: LinkState, event: LinkEvent): LinkState {
  const next = LINK_TRANSITIONS[state][event];
  if (next === undefined) throw new InvalidTransitionError(`link cannot go from ${state} on ${event}`);
  return next;
}

export interface LinkSnapshot {
  state: LinkState;
  /** ISO time of the last state change. */
  since: string;
  reason: string | null;
  lastHeartbeatAt: string | null;
}
