import { type Static, type TSchema, Type } from '@sinclair/typebox';
import { ActionStatusRequest, ActionStatusResponse, RunActionRequest, RunActionResponse } from './actions.js';
import { DisplayName, IsoTime } from './formats.js';
import { ForwardedTransaction, MAX_FORWARD_BATCH } from './transactions.js';

export { IsoTime };

/**
 * Every RPC action on the agent link: its direction and the schemas of its request and response.
 * docs/protocol.md publishes these schemas; both sides validate every payload against them.
 */
const Count = Type.Integer({ minimum: 0 });
const Bytes = Type.Integer({ minimum: 0 });
const Id = Type.String({ minLength: 1, maxLength: 64 });

export const HelloRequest = Type.Object(
  {
    terminalId: Id,
    softwareVersion: Type.String({ minLength: 1, maxLength: 64 }),
    protocolVersion: Type.Integer({ minimum: 1 }),
    configVersion: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()]),
    bootId: Type.String({ minLength: 1, maxLength: 64 }),
    queueDepth: Count,
    openActions: Type.Array(Id, { maxItems: 100 }),
    clock: IsoTime,
    /** What the device says it is (hardware, or its device settings); absent when it does not know. */
    model: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    serialNumber: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  },
  { additionalProperties: false },
);
/**
 * Who the terminal is in the fleet, as support sees it: its name and its store (and, where the
 * cloud has them, the store's and the organization's names). Sent in the Hello answer and, when
 * it changes while the link is up (a rename, a move), in `TerminalUpdated`.
 */
export const TerminalProfile = Type.Object(
  {
    name: DisplayName,
    locationId: Id,
    locationName: Type.Optional(DisplayName),
    organizationId: Type.Optional(Id),
    organizationSlug: Type.Optional(Type.String({ maxLength: 100 })),
    organizationName: Type.Optional(DisplayName),
  },
  { additionalProperties: false },
);
export type TerminalProfile = Static<typeof TerminalProfile>;

export const HelloResponse = Type.Object(
  {
    serverTime: IsoTime,
    heartbeatIntervalSec: Type.Integer({ minimum: 1, maximum: 86_400 }),
    pingIntervalSec: Type.Integer({ minimum: 1, maximum: 3_600 }),
    /** The terminal's profile now (optional: a cloud may leave it out; the agent keeps what it has). */
    terminal: Type.Optional(TerminalProfile),
  },
  { additionalProperties: false },
);

export const HeartbeatRequest = Type.Object(
  {
    sentAt: IsoTime,
    uptimeSec: Count,
    battery: Type.Union([
      Type.Object(
        { level: Type.Integer({ minimum: 0, maximum: 100 }), charging: Type.Boolean() },
        { additionalProperties: false },
      ),
      Type.Null(),
    ]),
    disk: Type.Object({ freeBytes: Bytes, totalBytes: Bytes }, { additionalProperties: false }),
    memory: Type.Object(
      { freeBytes: Bytes, totalBytes: Bytes, agentRssBytes: Bytes },
      { additionalProperties: false },
    ),
    temperatureC: Type.Union([Type.Number({ minimum: -100, maximum: 200 }), Type.Null()]),
    queueDepth: Count,
    /** When the oldest transaction the cloud does not have yet was stored; null when none. */
    queueOldestAt: Type.Union([IsoTime, Type.Null()]),
    linkRttMs: Type.Union([Type.Number({ minimum: 0 }), Type.Null()]),
  },
  { additionalProperties: false },
);
export const HeartbeatResponse = Type.Object({ serverTime: IsoTime }, { additionalProperties: false });

/**
 * The cloud pushes the full effective config. `config` is checked against TerminalConfig by the
 * agent's config manager, not at the frame level, so a bad config is answered with a
 * `ConfigApplied {status: "rejected", errors}` that names the fields, never with a bare RPC error.
 */
export const ApplyConfigRequest = Type.Object(
  {
    version: Type.Integer({ minimum: 1 }),
    config: Type.Record(Type.String(), Type.Unknown()),
  },
  { additionalProperties: false },
);
export const ApplyConfigResponse = Type.Object(
  { received: Type.Literal(true) },
  { additionalProperties: false },
);

export const ConfigIssue = Type.Object(
  { path: Type.String({ maxLength: 200 }), message: Type.String({ maxLength: 500 }) },
  { additionalProperties: false },
);
export const ConfigAppliedRequest = Type.Object(
  {
    version: Type.Integer({ minimum: 1 }),
    status: Type.Union([Type.Literal('applied'), Type.Literal('rejected')]),
    errors: Type.Array(ConfigIssue, { maxItems: 20 }),
    /** The version the agent runs after this push (unchanged when rejected); null if none yet. */
    appliedVersion: Type.Union([Type.Integer({ minimum: 1 }), Type.Null()]),
  },
  { additionalProperties: false },
);
export const ConfigAppliedResponse = Type.Object({}, { additionalProperties: false });

export const TransactionsForwardRequest = Type.Object(
  { items: Type.Array(ForwardedTransaction, { minItems: 1, maxItems: MAX_FORWARD_BATCH }) },
  { additionalProperties: false },
);
export const TransactionsForwardResponse = Type.Object(
  {
    results: Type.Array(
      Type.Object(
        {
          id: Type.String(),
          /** received: stored now; duplicate: the cloud already had it (same answer as the first time); invalid: refused, never retried blindly. */
          status: Type.Union([Type.Literal('received'), Type.Literal('duplicate'), Type.Literal('invalid')]),
          reason: Type.Optional(Type.String({ maxLength: 500 })),
        },
        { additionalProperties: false },
      ),
      { maxItems: MAX_FORWARD_BATCH },
    ),
  },
  { additionalProperties: false },
);
export const TransactionResultRequest = Type.Object(
  {
    results: Type.Array(
      Type.Object(
        {
          id: Type.String(),
          status: Type.Union([Type.Literal('authorised'), Type.Literal('declined')]),
          reason: Type.Optional(Type.String({ maxLength: 500 })),
        },
        { additionalProperties: false },
      ),
      { minItems: 1, maxItems: MAX_FORWARD_BATCH },
    ),
  },
  { additionalProperties: false },
);
export const TransactionResultResponse = Type.Object({}, { additionalProperties: false });

/** A CSR for a *new* device key; the answer is its certificate (the old pair stays in use until it is installed). */
export const RenewCertificateRequest = Type.Object(
  { csr: Type.String({ minLength: 1, maxLength: 16_384, description: 'PKCS#10 CSR, PEM' }) },
  { additionalProperties: false },
);
export const RenewCertificateResponse = Type.Object(
  {
    certificate: Type.String({ description: 'client certificate, PEM' }),
    fleetCa: Type.String({ description: 'fleet CA certificate, PEM' }),
    dataPublicKey: Type.String({ description: "the cloud's data public key, PEM" }),
  },
  { additionalProperties: false },
);
/** The cloud deactivated this terminal: its certificate is refused from now on. */
export const DeactivateRequest = Type.Object(
  { reason: Type.String({ maxLength: 500 }), at: IsoTime },
  { additionalProperties: false },
);
export const DeactivateResponse = Type.Object({}, { additionalProperties: false });

/** One diagnostics check: what the technician's report, the POS app's screen and the cloud all show. */
export const DiagnosticsCheck = Type.Object(
  {
    id: Type.String({ maxLength: 40 }),
    group: Type.Union([
      Type.Literal('identity'),
      Type.Literal('network'),
      Type.Literal('agent'),
      Type.Literal('device'),
    ]),
    status: Type.Union([Type.Literal('pass'), Type.Literal('warn'), Type.Literal('fail')]),
    detail: Type.String({ maxLength: 1000 }),
    hint: Type.Optional(Type.String({ maxLength: 1000 })),
  },
  { additionalProperties: false },
);
export const DiagnosticsReportSchema = Type.Object(
  {
    checks: Type.Array(DiagnosticsCheck, { maxItems: 50 }),
    summary: Type.Object({ pass: Count, warn: Count, fail: Count }, { additionalProperties: false }),
    generatedAt: IsoTime,
  },
  { additionalProperties: false },
);
/** The cloud renamed or moved the terminal while it is connected: the agent records the new profile. */
export const TerminalUpdatedRequest = TerminalProfile;
export const TerminalUpdatedResponse = Type.Object({}, { additionalProperties: false });

/** The cloud asks a connected terminal to run its diagnostics; the answer is the report. */
export const RequestDiagnosticsRequest = Type.Object({}, { additionalProperties: false });

/**
 * The cloud checks the link end to end (REST `POST /v1/terminals/{id}/check-connection`): the
 * agent answers at once with its clock. A link whose agent does not answer is connected but dead.
 */
export const PingRequest = Type.Object({}, { additionalProperties: false });
export const PingResponse = Type.Object({ at: IsoTime }, { additionalProperties: false });

/**
 * The cloud asks the agent to renew its certificate now (support's "Rotate certificate"); the
 * agent answers once it has started, renews over the link as usual (`RenewCertificate`) and
 * reconnects with the new certificate, which the cloud then makes current.
 */
export const RotateCertificateRequest = Type.Object(
  { reason: Type.Optional(Type.String({ maxLength: 200 })) },
  { additionalProperties: false },
);
export const RotateCertificateResponse = Type.Object(
  { accepted: Type.Literal(true) },
  { additionalProperties: false },
);

export type Direction = 'agentToCloud' | 'cloudToAgent';
interface ActionSpec {
  direction: Direction;
  request: TSchema;
  response: TSchema;
}

export const Actions = {
  Hello: { direction: 'agentToCloud', request: HelloRequest, response: HelloResponse },
  Heartbeat: { direction: 'agentToCloud', request: HeartbeatRequest, response: HeartbeatResponse },
  ConfigApplied: {
    direction: 'agentToCloud',
    request: ConfigAppliedRequest,
    response: ConfigAppliedResponse,
  },
  ApplyConfig: { direction: 'cloudToAgent', request: ApplyConfigRequest, response: ApplyConfigResponse },
  TransactionsForward: {
    direction: 'agentToCloud',
    request: TransactionsForwardRequest,
    response: TransactionsForwardResponse,
  },
  TransactionResult: {
    direction: 'cloudToAgent',
    request: TransactionResultRequest,
    response: TransactionResultResponse,
  },
  RenewCertificate: {
    direction: 'agentToCloud',
    request: RenewCertificateRequest,
    response: RenewCertificateResponse,
  },
  Deactivate: { direction: 'cloudToAgent', request: DeactivateRequest, response: DeactivateResponse },
  RunAction: { direction: 'cloudToAgent', request: RunActionRequest, response: RunActionResponse },
  ActionStatus: { direction: 'agentToCloud', request: ActionStatusRequest, response: ActionStatusResponse },
  RequestDiagnostics: {
    direction: 'cloudToAgent',
    request: RequestDiagnosticsRequest,
    response: DiagnosticsReportSchema,
  },
  TerminalUpdated: {
    direction: 'cloudToAgent',
    request: TerminalUpdatedRequest,
    response: TerminalUpdatedResponse,
  },
  Ping: { direction: 'cloudToAgent', request: PingRequest, response: PingResponse },
  RotateCertificate: {
    direction: 'cloudToAgent',
    request: RotateCertificateRequest,
    response: RotateCertificateResponse,
  },
} as const satisfies Record<string, ActionSpec>;

export type ActionName = keyof typeof Actions;
export type AgentToCloudAction = {
  [K in ActionName]: (typeof Actions)[K]['direction'] extends 'agentToCloud' ? K : never;
}[ActionName];
export type CloudToAgentAction = Exclude<ActionName, AgentToCloudAction>;
export type RequestOf<A extends ActionName> = Static<(typeof Actions)[A]['request']>;
export type ResponseOf<A extends ActionName> = Static<(typeof Actions)[A]['response']>;

export type Hello = Static<typeof HelloRequest>;
export type HelloAck = Static<typeof HelloResponse>;
export type Heartbeat = Static<typeof HeartbeatRequest>;
export type ApplyConfig = Static<typeof ApplyConfigRequest>;
export type ConfigApplied = Static<typeof ConfigAppliedRequest>;
export type TransactionsForward = Static<typeof TransactionsForwardRequest>;
export type TransactionsForwardResult = Static<typeof TransactionsForwardResponse>;
export type TransactionResult = Static<typeof TransactionResultRequest>;
export type RenewCertificate = Static<typeof RenewCertificateRequest>;
export type RenewedCertificate = Static<typeof RenewCertificateResponse>;
export type Deactivate = Static<typeof DeactivateRequest>;
export type DiagnosticsReport = Static<typeof DiagnosticsReportSchema>;
export type DiagnosticsCheck = Static<typeof DiagnosticsCheck>;
