import { type Static, Type } from '@sinclair/typebox';
import { IsoTime } from './formats.js';

/**
 * Remote actions (reboot, software update, lock, unlock): their schemas on the link and in the
 * REST API, the lifecycle every action follows, and the release manifest an update is signed over.
 * Pure: shared by the agent and the cloud.
 */
export const ACTION_TYPES = ['reboot', 'update', 'lock', 'unlock'] as const;
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
export const ReleaseDescriptor = Type.Object(
  {
    version: SemVer,
    sha256: Sha256,
    size: Type.Integer({ minimum: 1 }),
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
          'Ed25519 signature (base64) over downgradeManifest(version, sha256, size): the release key allows installing this release over a newer one',
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
 * The text a release key signs to allow a downgrade to this release: the manifest plus one line.
 * Only a holder of the release key can allow one — the cloud's `allowDowngrade` is the operator
 * asking for it, not the permission (a compromised cloud could otherwise install any older,
 * vulnerable signed release).
 */
export function downgradeManifest(r: { version: string; sha256: string; size: number }): string {
  return `${releaseManifest(r)}downgrade allowed\n`;
}

/** Compares two semantic versions: negative, 0 or positive. A pre-release sorts before its release. */
export function compareVersions(a: string, b: string): number {
  const parse = (v: string) => {
    const [core, pre] = v.split('-', 2) as [string, string | undefined];
    return { nums: core.split('.').map(Number), pre };
  };
  const x = parse(a);
  const y = parse(b);
  for (let i = 0; i < 3; i++) {
    const d = (x.nums[i] ?? 0) - (y.nums[i] ?? 0);
    if (d !== 0) return d;
  }
  if (x.pre === y.pre) return 0;
  if (x.pre === undefined) return 1;
  if (y.pre === undefined) return -1;
  return x.pre < y.pre ? -1 : 1;
}

export const UpdateParams = Type.Object(
  {
    release: ReleaseDescriptor,
    /** Install an older version than the running one (refused otherwise). */
    allowDowngrade: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type UpdateParams = Static<typeof UpdateParams>;

const NoParams = Type.Object({}, { additionalProperties: false });
export const ActionId = Type.String({ minLength: 1, maxLength: 64 });

export const RunActionRequest = Type.Union([
  Type.Object(
    { actionId: ActionId, type: Type.Literal('update'), params: UpdateParams, expiresAt: IsoTime },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      actionId: ActionId,
      type: Type.Union([Type.Literal('reboot'), Type.Literal('lock'), Type.Literal('unlock')]),
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
    type: ActionTypeSchema,
    params: Type.Optional(
      Type.Object(
        { version: Type.Optional(SemVer), allowDowngrade: Type.Optional(Type.Boolean()) },
        { additionalProperties: false },
      ),
    ),
    /** An action not delivered by then fails with `expired` (default 24 h). */
    ttlSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 30 * 86_400 })),
  },
  { additionalProperties: false },
);
