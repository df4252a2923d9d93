import type { ActionProgress, ActionType } from '../../protocol/actions.js';
import type { TerminalConfig } from '../../protocol/config-schema.js';
import type { ConfigApplied } from '../../protocol/messages.js';
import type { LinkSnapshot } from '../link/link-state.js';
import type { TransactionRecord } from '../transactions/transaction-record.js';

/**
 * Every event the agent publishes (`GET /v1/events`), by name, with the payload it carries: the
 * bus takes nothing else, so a payload of the wrong shape does not compile.
 */
export interface AgentEventMap {
  /** The link changed state. */
  link: LinkSnapshot;
  /** A pushed config was applied, or refused (the last good one kept). */
  config: ConfigEvent;
  /** The terminal was locked or unlocked by an action. */
  lock: { locked: boolean; actionId: string };
  /** An action moved on. */
  action: { id: string; type: ActionType } & ActionProgress;
  /** A transaction changed: its whole record, as `GET /v1/transactions/{id}` shows it. */
  transaction: TransactionRecord;
  /** The cloud renamed or moved this terminal. */
  profile: { name: string; locationId: string; locationName: string | null };
  /** Where enrollment of this terminal stands. */
  enrollment: EnrollmentProgress;
}

export type AgentEventName = keyof AgentEventMap;

export type ConfigEvent =
  | { status: 'applied'; version: number; config: TerminalConfig }
  | { status: 'rejected'; version: number; errors: ConfigApplied['errors']; appliedVersion: number | null };

/** The `enrollment` event: where enrollment of this terminal stands. */
export type EnrollmentProgress =
  | { state: 'waiting'; reason: string }
  | { state: 'pairing'; code: string; expiresAt: string }
  | { state: 'enrolling'; reason?: string; step?: string }
  | { state: 'failed'; reason: string; retryInMs: number }
  | { state: 'enrolled'; terminalId: string; name: string; locationId: string };
