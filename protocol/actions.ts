import { type Static, Type } from '@sinclair/typebox';
import { IsoTime, isoTimeMs } from './formats.js';
import { Refusal } from './refusal.js';

/**
 * Remote actions (reboot, software update, lock, unlock): their schemas on the link and in the
 * REST API, the lifecycle every action follows, and the release manifest an update is signed over.
 * Pure: shared by the agent and the cloud.
 */
export const ACTION_TYPES = ['reboot', 'update', 'lock', 'unlock', 'collect_logs'] as const;
export type ActionType = (typeof ACTION_TYPES)[number];
export const ActionTypeSchema = Type.Union(ACTION_TYPES.map((t) => Type.Literal(t)));

/** queued (cloud only, not delivered yet) → processing → completed | failed. */
export const ACTION_STATES = ['queued', 'processing', 'completed', 'failed'] as const;
export type ActionState = (typeof ACTION_STATES)[number];
export const ActionStateSchema = Type.Union(ACTION_STATES.map((s) => Type.Literal(s)));

export function isFinal(s: ActionState): boolean {
  return s === 'completed' || s === 'failed';
}

/** A state may only move forward: queued → processing → completed | failed; a final state never changes. */
export function canMove(from: ActionState, to: ActionState): boolean {
  if (isFinal(from)) return false;
  return ACTION_STATES.indexOf(to) > ACTION_STATES.indexOf(from) || (from === 'processing' && to === from);
}

export const SemVer = Type.String({
  pattern: '^\\d+\\.\\d+\\.\\d+(-[0-9A-Za-z.-]+)?$',
  maxLength: 64,
  description: 'semantic version, e.g. 1.4.2 or 1.5.0-rc.1',
});
const Sha256 = Type.String({ pattern: '^[0-9a-f]{64}$', description: 'SHA-256 of the artifact, hex' });

/** What the cloud tells an agent about a release: everything it needs to fetch and check it. */
/** The largest release a cloud publishes and an agent installs: 256 MiB (a release is ~10 MB today). */
export const MAX_RELEASE_BYTES = 256 * 1024 * 1024;

export const ReleaseDescriptor = Type.Object(
  {
    version: SemVer,
    sha256: Sha256,
    size: Type.Integer({ minimum: 1, maximum: MAX_RELEASE_BYTES }),
    signature: Type.String({
      minLength: 1,
      maxLength: 200,
      description: 'Ed25519 signature (base64) over releaseManifest(version, sha256, size)',
    }),
    downgradeSignature: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 200,
        description:
          'Ed25519 signature (base64) over downgradeManifest(version, sha256, size, downgradeFrom): the release key allows installing this release over a newer one, up to downgradeFrom',
      }),
    ),
    downgradeFrom: Type.Optional(
      Type.String({
        pattern: '^\\d+\\.\\d+\\.\\d+(-[0-9A-Za-z.-]+)?$',
        maxLength: 64,
        description:
          'the newest version this release may replace as a downgrade (signed with downgradeSignature)',
      }),
    ),
  },
  { additionalProperties: false },
);
export type ReleaseDescriptor = Static<typeof ReleaseDescriptor>;

/** The text a release key signs: binds the version to the artifact, so no signed artifact can be relabelled. */
export function releaseManifest(r: { version: string; sha256: string; size: number }): string {
  return `posagent-release\nversion ${r.version}\nsha256 ${r.sha256}\nsize ${r.size}\n`;
}

/**
 * The text a release key signs to allow a downgrade to this release: the manifest plus one line
 * naming the newest version it may replace (a permission bounded in time: a release made later
 * cannot be downgraded with it). Only a holder of the release key can allow one — the cloud's
 * `allowDowngrade` is the operator asking for it, not the permission (a compromised cloud could
 * otherwise install any older, vulnerable signed release).
 */
export function downgradeManifest(
  r: { version: string; sha256: string; size: number },
  from: string,
): string {
  return `${releaseManifest(r)}downgrade from ${from}\n`;
}

/**
 * Compares two semantic versions by SemVer 2.0 precedence: negative, 0 or positive. The core
 * numerically; a pre-release sorts before its release; pre-release identifiers are compared one by
 * one — numeric ones as numbers (rc.9 < rc.10), alphanumeric ones in ASCII order, a numeric one
 * before an alphanumeric one, and a shorter set first when all else is equal. This order decides
 * what is an upgrade and what needs the release key's downgrade signature.
 */
export function compareVersions(a: string, b: string): number {
  const parse = (v: string) => {
    const dash = v.indexOf('-');
    const core = dash < 0 ? v : v.slice(0, dash);
    const pre = dash < 0 ? [] : v.slice(dash + 1).split('.');
    return { nums: core.split('.').map(Number), pre };
  };
  const x = parse(a);
  const y = parse(b);
  for (let i = 0; i < 3; i++) {
    const d = (x.nums[i] ?? 0) - (y.nums[i] ?? 0);
    if (d !== 0) return d;
  }
  if (x.pre.length === 0 || y.pre.length === 0) return y.pre.length - x.pre.length;
  for (let i = 0; i < Math.min(x.pre.length, y.pre.length); i++) {
    const p = x.pre[i]!;
    const q = y.pre[i]!;
    const pn = /^\d+$/.test(p);
    const qn = /^\d+$/.test(q);
    if (pn && qn) {
      const d = Number(p) - Number(q);
      if (d !== 0) return d;
    } else if (pn !== qn) return pn ? -1 : 1;
    else if (p !== q) return p < q ? -1 : 1;
  }
  return x.pre.length - y.pre.length;
}

export const UpdateParams = Type.Object(
  {
    release: ReleaseDescriptor,
    /** Install an older version than the running one (refused otherwise). */
    allowDowngrade: Type.Optional(Type.Boolean()),
    /** Switch at once: do not wait for the maintenance window (a busy lease still holds it). */
    now: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type UpdateParams = Static<typeof UpdateParams>;

const NoParams = Type.Object({}, { additionalProperties: false });

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
/** The longest span one collect_logs may ask for, and the most its bundle holds (before gzip). */
export const MAX_LOG_SPAN_MS = 7 * 86_400_000;
export const MAX_LOG_BYTES = 1024 * 1024;

/** `collect_logs`: the agent's log lines from `since` to `until` (at `level` and above), redacted, capped. */
export const CollectLogsParams = Type.Object(
  {
    since: IsoTime,
    until: IsoTime,
    level: Type.Optional(Type.Union(LOG_LEVELS.map((l) => Type.Literal(l)))),
  },
  { additionalProperties: false },
);
export type CollectLogsParams = Static<typeof CollectLogsParams>;

/** The span, checked: a clear refusal for one that is backwards, too long or in the future. */
export function checkLogSpan(p: CollectLogsParams, nowMs: number): { since: number; until: number } {
  const since = isoTimeMs(p.since);
  const until = isoTimeMs(p.until);
  if (since === null || until === null)
    throw new Refusal(
      'invalid_action',
      `${since === null ? `since (${p.since})` : `until (${p.until})`} is not a real time`,
    );
  if (!(since < until))
    throw new Refusal('invalid_action', `since (${p.since}) must be before until (${p.until})`);
  if (until - since > MAX_LOG_SPAN_MS)
    throw new Refusal('invalid_action', `a log span may be at most ${MAX_LOG_SPAN_MS / 86_400_000} days`);
  if (since > nowMs) throw new Refusal('invalid_action', `since (${p.since}) is in the future`);
  return { since, until };
}

/** A reboot's: `now` skips the maintenance window (a busy lease still holds it). */
const RebootParams = Type.Object({ now: Type.Optional(Type.Boolean()) }, { additionalProperties: false });
export const ActionId = Type.String({ minLength: 1, maxLength: 64 });

export const RunActionRequest = Type.Union([
  Type.Object(
    { actionId: ActionId, type: Type.Literal('update'), params: UpdateParams, expiresAt: IsoTime },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      actionId: ActionId,
      type: Type.Literal('reboot'),
      params: RebootParams,
      expiresAt: IsoTime,
    },
    { additionalProperties: false },
  ),
  Type.Object(
    { actionId: ActionId, type: Type.Literal('collect_logs'), params: CollectLogsParams, expiresAt: IsoTime },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      actionId: ActionId,
      type: Type.Union([Type.Literal('lock'), Type.Literal('unlock')]),
      params: NoParams,
      expiresAt: IsoTime,
    },
    { additionalProperties: false },
  ),
]);
export type RunAction = Static<typeof RunActionRequest>;

/** Where an action is: its state, why (failed, or waiting), and for an update the step it is on. */
export const ActionProgress = Type.Object(
  {
    status: Type.Union([Type.Literal('processing'), Type.Literal('completed'), Type.Literal('failed')]),
    reason: Type.Union([Type.String({ maxLength: 500 }), Type.Null()]),
    step: Type.Union([Type.String({ maxLength: 40 }), Type.Null()]),
    percent: Type.Union([Type.Integer({ minimum: 0, maximum: 100 }), Type.Null()]),
  },
  { additionalProperties: false },
);
export type ActionProgress = Static<typeof ActionProgress>;

/** The answer to RunAction is the action's current progress: a repeat gets it too, and nothing runs twice. */
export const RunActionResponse = ActionProgress;

export const ActionStatusRequest = Type.Object(
  {
    actionId: ActionId,
    ...ActionProgress.properties,
    at: IsoTime,
  },
  { additionalProperties: false },
);
export type ActionStatus = Static<typeof ActionStatusRequest>;
export const ActionStatusResponse = Type.Object({}, { additionalProperties: false });

/** `POST /v1/terminals/{id}/actions` body. */
export const CreateActionBody = Type.Object(
  {
    /** The action (ours); `action` is VINR's name for the same field: give one of them. */
    type: Type.Optional(ActionTypeSchema),
    action: Type.Optional(ActionTypeSchema),
    params: Type.Optional(
      Type.Object(
        {
          version: Type.Optional(SemVer),
          allowDowngrade: Type.Optional(Type.Boolean()),
          /** reboot, update: run at once, not in the maintenance window. */
          now: Type.Optional(Type.Boolean()),
          /** collect_logs: the span (ISO 8601) and the lowest level. */
          since: Type.Optional(IsoTime),
          until: Type.Optional(IsoTime),
          level: Type.Optional(Type.Union(LOG_LEVELS.map((l) => Type.Literal(l)))),
        },
        { additionalProperties: false },
      ),
    ),
    /** An action not delivered by then fails with `expired` (default 24 h). */
    ttlSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 30 * 86_400 })),
  },
  { additionalProperties: false },
);
