import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ActionService } from '../actions/action-service.js';
import { sourceOf } from '../api/connection-guard.js';
import type { DeploymentService } from '../deployments/deployment-service.js';
import type { EnrollmentService } from '../enrollment/enrollment-service.js';
import type { FleetService } from '../fleet/fleet-service.js';
import type { CloudStore } from '../store/store-types.js';
import { startSweep } from '../sweep.js';
import { AuditTrail } from './audit-trail.js';
import { OperatorAccounts, type SignInLimits } from './operator-accounts.js';
import { createPortalHandler } from './portal-handler.js';
import { PortalSessions, type SessionLimits } from './portal-sessions.js';

export interface PortalParts {
  accounts: OperatorAccounts;
  sessions: PortalSessions;
  audit: AuditTrail;
  handle(req: IncomingMessage, res: ServerResponse): void;
  start(): void;
  stop(): void;
}

/** The portal's parts, built once by the cloud's composition root. */
export function createPortal(o: {
  store: CloudStore;
  fleet: FleetService;
  enrollment: EnrollmentService;
  actions: ActionService;
  deployments: DeploymentService;
  now(): number;
  bodyTimeoutMs: number;
  signIn: SignInLimits;
  session: SessionLimits;
  log: { error(obj: object, msg: string): void; info(obj: object, msg: string): void };
}): PortalParts {
  const accounts = new OperatorAccounts({
    operators: o.store.operators,
    sessions: o.store.portalSessions,
    failures: o.store.enrollmentLimits,
    limits: o.signIn,
    now: o.now,
  });
  const sessions = new PortalSessions({
    sessions: o.store.portalSessions,
    operators: o.store.operators,
    limits: o.session,
    now: o.now,
  });
  const audit = new AuditTrail({ audit: o.store.audit, now: o.now });
  const handle = createPortalHandler({
    fleet: o.fleet,
    enrollment: o.enrollment,
    actions: o.actions,
    deployments: o.deployments,
    accounts,
    sessions,
    audit,
    now: o.now,
    bodyTimeoutMs: o.bodyTimeoutMs,
    source: (req) => sourceOf(req.socket.remoteAddress),
    log: o.log,
  });
  let sweep: NodeJS.Timeout | undefined;
  return {
    accounts,
    sessions,
    audit,
    handle,
    start: () => {
      sweep = startSweep(
        async () => {
          await sessions.prune();
        },
        60_000,
        (err) => o.log.error({ err: err.message }, 'portal session prune failed'),
      );
    },
    stop: () => clearInterval(sweep),
  };
}

/** `/portal` and below go to the portal; everything else to the REST API. */
export function portalOrRest(
  portal: (req: IncomingMessage, res: ServerResponse) => void,
  rest: (req: IncomingMessage, res: ServerResponse) => void,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const url = req.url ?? '/';
    if (url === '/portal' || url.startsWith('/portal/') || url.startsWith('/portal?')) portal(req, res);
    else rest(req, res);
  };
}
