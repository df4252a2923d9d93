import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { MAX_RELEASE_BYTES } from '../../protocol/actions.js';
import { isRefusal, Refusal } from '../../protocol/refusal.js';
import { ENROLL_PATH } from '../../protocol/version.js';
import type { ActionService } from '../actions/action-service.js';
import type { ReleaseService } from '../actions/release-service.js';
import type { DeploymentService } from '../deployments/deployment-service.js';
import { qrPng } from '../enrollment/enrollment-qr.js';
import type { EnrollmentService } from '../enrollment/enrollment-service.js';
import type { FleetService } from '../fleet/fleet-service.js';
import { authenticateTerminal } from '../identity/terminal-auth.js';
import type { TransactionLedger } from '../ledger/transaction-ledger.js';
import { isStoreUnavailable } from '../store/store-errors.js';
import type { TerminalStore } from '../store/store-types.js';
import type { Webhooks } from '../webhooks/webhooks.js';
import { sourceOf } from './connection-guard.js';
import { sendFile } from './file-transfer.js';
import {
  checkQuery,
  decodePathSegment,
  MAX_BODY_BYTES,
  readJsonBody,
  refuseDeclaredOver,
  sendError,
  sendJson,
} from './http-json.js';
import { STORE_UNAVAILABLE, statusOf } from './refusal-status.js';
import { rolloutRoutes } from './rollout-routes.js';
import { FileBody, RawBody, type Route } from './route.js';

/**
 * The fleet REST API (VINR-shaped) and the agent-facing enrollment endpoint, on the same HTTPS port
 * as the agent gateway. Admin routes need `Authorization: Bearer <token>` (or `X-Api-Key`).
 */
export interface RestApiOptions {
  fleet: FleetService;
  enrollment: EnrollmentService;
  webhooks: Webhooks;
  ledger: TransactionLedger;
  actions: ActionService;
  releases: ReleaseService;
  deployments: DeploymentService;
  store: { terminals: Pick<TerminalStore, 'get' | 'promotePendingCertificate' | 'isRevoked'> };
  /** The fleet CA certificate (PEM): a terminal route's caller must present a certificate it issued. */
  caPem: string;
  now(): number;
  /** A JSON body must have arrived this long after the handler asks for it (408 otherwise). */
  bodyTimeoutMs: number;
  adminToken: string;
  connectedIds(): Promise<Iterable<string>>;
  /** For the balancer (`/readyz`): the store answers and this gateway's lease is renewed. */
  ready(): boolean;
  metrics: { render(): Promise<string> };
  log: { error(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

export function createRestHandler(o: RestApiOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const source = (req: IncomingMessage) => sourceOf(req.socket.remoteAddress);
  const routes: Route[] = [
    {
      method: 'POST',
      pattern: /^\/v1\/organizations$/,
      access: 'admin',
      created: true,
      handle: async (c) => await o.fleet.organizations.createOrganization(await c.body()),
    },
    {
      method: 'GET',
      pattern: /^\/v1\/organizations$/,
      access: 'admin',
      handle: async (c) => await o.fleet.organizations.listOrganizations(c.query),
    },
    {
      method: 'GET',
      pattern: /^\/v1\/organizations\/([^/]+)$/,
      access: 'admin',
      handle: async (c) => await o.fleet.organizations.getOrganization(c.params[0]!),
    },
    {
      method: 'POST',
      pattern: /^\/v1\/organizations\/([^/]+)$/,
      access: 'admin',
      handle: async (c) => await o.fleet.organizations.updateOrganization(c.params[0]!, await c.body()),
    },
    {
      method: 'POST',
      pattern: /^\/v1\/locations$/,
      access: 'admin',
      created: true,
      handle: async (c) => await o.fleet.organizations.createLocation(await c.body()),
    },
    {
      method: 'GET',
      pattern: /^\/v1\/locations$/,
      access: 'admin',
      handle: async (c) => await o.fleet.organizations.listLocations(c.query),
    },
    {
      method: 'GET',
      pattern: /^\/v1\/locations\/([^/]+)$/,
      access: 'admin',
      handle: async (c) => await o.fleet.organizations.getLocation(c.params[0]!),
    },
    {
      method: 'POST',
      pattern: /^\/v1\/locations\/([^/]+)$/,
      access: 'admin',
      handle: async (c) => await o.fleet.organizations.updateLocation(c.params[0]!, await c.body()),
    },
    {
      method: 'GET',
      pattern: /^\/v1\/enrollment-codes$/,
      access: 'admin',
      handle: async (c) => await o.enrollment.listEnrollmentCodes(c.query),
    },
    {
      method: 'GET',
      pattern: /^\/v1\/enrollment-codes\/([^/]+)$/,
      access: 'admin',
      handle: async (c) => await o.enrollment.getEnrollmentCode(c.params[0]!),
    },
    {
      method: 'DELETE',
      pattern: /^\/v1\/enrollment-codes\/([^/]+)$/,
      access: 'admin',
      handle: async (c) => await o.enrollment.revokeEnrollmentCode(c.params[0]!),
    },
    {
      method: 'GET',
      pattern: /^\/v1\/terminals\/([^/]+)\/events$/,
      access: 'admin',
      handle: async (c) => await o.fleet.terminalEvents(c.params[0]!, c.query),
    },
    {
      method: 'GET',
      pattern: /^\/v1\/terminals\/([^/]+)\/escalation$/,
      access: 'admin',
      handle: async (c) => await o.fleet.escalation(c.params[0]!),
    },
    {
      method: 'POST',
      pattern: /^\/v1\/terminals\/([^/]+)\/reprovision$/,
      access: 'admin',
      created: true,
      handle: async (c) => await o.enrollment.reprovisionTerminal(c.params[0]!, await c.body()),
    },
    {
      method: 'POST',
      pattern: /^\/v1\/terminals\/([^/]+)\/rotate-certificate$/,
      access: 'admin',
      handle: async (c) => {
        await c.body();
        return await o.fleet.rotateCertificate(c.params[0]!);
      },
    },
    {
      method: 'POST',
      pattern: /^\/v1\/terminals\/([^/]+)\/revoke-certificate$/,
      access: 'admin',
      handle: async (c) => await o.fleet.revokeCertificate(c.params[0]!, await c.body()),
    },
    {
      method: 'POST',
      pattern: /^\/v1\/terminals\/([^/]+)\/check-connection$/,
      access: 'admin',
      handle: async (c) => await o.fleet.checkConnection(c.params[0]!, await c.body()),
    },
    {
      method: 'POST',
      pattern: /^\/v1\/enrollment-codes$/,
      access: 'admin',
      created: true,
      handle: async (c) => await o.enrollment.createEnrollmentCode(await c.body()),
    },
    {
      method: 'GET',
      pattern: /^\/v1\/enrollment-codes\/([^/]+)\/qr\.png$/,
      access: 'admin',
      handle: async (c) =>
        new RawBody('image/png', await qrPng(await o.enrollment.qrPayloadOf(c.params[0]!))),
    },
    {
      method: 'GET',
      pattern: /^\/healthz$/,
      access: 'public',
      handle: () => ({ status: 'ok' }),
    },
    {
      method: 'GET',
      pattern: /^\/readyz$/,
      access: 'public',
      handle: () =>
        o.ready()
          ? { ready: true }
          : new RawBody(
              'application/json',
              Buffer.from('{"ready":false,"reason":"store or lease not current"}'),
              503,
            ),
    },
    {
      method: 'GET',
      pattern: /^\/metrics$/,
      access: 'admin',
      handle: async () => new RawBody('text/plain; version=0.0.4', Buffer.from(await o.metrics.render())),
    },
    {
      method: 'GET',
      pattern: /^\/v1\/fleet-ca$/,
      access: 'public',
      handle: () => o.enrollment.fleetCa(),
    },
    {
      method: 'POST',
      pattern: new RegExp(`^${ENROLL_PATH}$`),
      access: 'public',
      handle: async (c) => await o.enrollment.enroll(await c.body(), source(c.req)),
    },
    {
      method: 'POST',
      pattern: /^\/v1\/pairings$/,
      access: 'public',
      created: true,
      handle: async (c) => await o.enrollment.startPairing(await c.body(), source(c.req)),
    },
    {
      method: 'POST',
      pattern: /^\/v1\/pairings\/([^/]+)\/poll$/,
      access: 'public',
      handle: async (c) => await o.enrollment.pollPairing(c.params[0]!, await c.body(), source(c.req)),
    },
    {
      method: 'POST',
      pattern: /^\/v1\/terminals\/activate$/,
      access: 'admin',
      created: true,
      handle: async (c) => {
        // The wait is checked before anything is activated: a bad one changes nothing.
        const waitMs = o.fleet.activateWaitOf(c.query);
        return await o.fleet.activated(await o.enrollment.activate(await c.body(), source(c.req)), waitMs);
      },
    },
    {
      method: 'POST',
      pattern: /^\/v1\/preregistrations$/,
      access: 'admin',
      created: true,
      handle: async (c) => await o.enrollment.createPreregistration(await c.body()),
    },
    {
      method: 'GET',
      pattern: /^\/v1\/preregistrations$/,
      access: 'admin',
      handle: async () => await o.enrollment.listPreregistrations(),
    },
    {
      method: 'POST',
      pattern: /^\/v1\/manufacturer-cas$/,
      access: 'admin',
      created: true,
      handle: async (c) => await o.enrollment.createManufacturerCa(await c.body()),
    },
    {
      method: 'GET',
      pattern: /^\/v1\/manufacturer-cas$/,
      access: 'admin',
      handle: async () => await o.enrollment.listManufacturerCas(),
    },
    {
      method: 'PUT',
      pattern: /^\/v1\/locations\/([^/]+)\/terminal-config$/,
      access: 'admin',
      handle: async (c) => await o.fleet.setLocationTemplate(c.params[0]!, await c.body()),
    },
    {
      method: 'GET',
      pattern: /^\/v1\/locations\/([^/]+)\/terminal-config$/,
      access: 'admin',
      handle: async (c) => await o.fleet.getLocationTemplate(c.params[0]!),
    },
    {
      method: 'POST',
      pattern: /^\/v1\/terminals\/([^/]+)\/configure$/,
      access: 'admin',
      handle: async (c) =>
        await o.fleet.configureTerminal(c.params[0]!, await c.body(), c.query.get('validate') !== 'false'),
    },
    {
      method: 'GET',
      pattern: /^\/v1\/terminals\/([^/]+)\/config$/,
      access: 'admin',
      handle: async (c) => await o.fleet.getTerminalConfig(c.params[0]!),
    },
    {
      method: 'POST',
      pattern: /^\/v1\/terminals\/([^/]+)\/actions$/,
      access: 'admin',
      created: true,
      handle: async (c) => await o.actions.create(c.params[0]!, await c.body()),
    },
    {
      method: 'GET',
      pattern: /^\/v1\/terminals\/([^/]+)\/actions$/,
      access: 'admin',
      handle: async (c) => await o.actions.list(c.params[0]!),
    },
    {
      method: 'GET',
      pattern: /^\/v1\/terminals\/([^/]+)\/actions\/([^/]+)$/,
      access: 'admin',
      handle: async (c) => await o.actions.get(c.params[0]!, c.params[1]!),
    },
    {
      method: 'POST',
      pattern: /^\/v1\/terminals\/([^/]+)\/diagnostics$/,
      access: 'admin',
      handle: async (c) => await o.fleet.runDiagnostics(c.params[0]!),
    },
    {
      method: 'GET',
      pattern: /^\/v1\/terminals\/([^/]+)\/diagnostics$/,
      access: 'admin',
      handle: async (c) => await o.fleet.lastDiagnostics(c.params[0]!),
    },
    {
      method: 'PUT',
      pattern: /^\/v1\/releases\/([^/]+)$/,
      access: 'admin',
      created: true,
      handle: async (c) => {
        const signature = c.req.headers['posagent-release-signature'];
        refuseDeclaredOver(c.req, MAX_RELEASE_BYTES, `a release may be at most ${MAX_RELEASE_BYTES} bytes`);
        return await o.releases.publishRelease(
          c.params[0]!,
          typeof signature === 'string' ? signature : undefined,
          c.req,
        );
      },
    },
    {
      method: 'PUT',
      pattern: /^\/v1\/releases\/([^/]+)\/downgrade-signature$/,
      access: 'admin',
      handle: async (c) => await o.releases.setDowngradeSignature(c.params[0]!, await c.body()),
    },
    {
      method: 'GET',
      pattern: /^\/v1\/releases$/,
      access: 'admin',
      handle: async () => await o.releases.listReleases(),
    },
    {
      method: 'GET',
      pattern: /^\/v1\/releases\/([^/]+)$/,
      access: 'admin',
      handle: async (c) => await o.releases.getRelease(c.params[0]!),
    },
    {
      method: 'POST',
      pattern: /^\/v1\/terminals\/([^/]+)\/deactivate$/,
      access: 'admin',
      handle: async (c) => await o.fleet.deactivate(c.params[0]!, await c.body()),
    },
    {
      method: 'POST',
      pattern: /^\/v1\/terminals\/([^/]+)\/replace$/,
      access: 'admin',
      created: true,
      handle: async (c) => await o.enrollment.replaceTerminal(c.params[0]!, await c.body()),
    },
    {
      method: 'GET',
      pattern: /^\/v1\/terminals$/,
      access: 'admin',
      handle: async (c) => await o.fleet.listTerminals(c.query),
    },
    {
      method: 'GET',
      pattern: /^\/v1\/terminals\/([^/]+)$/,
      access: 'admin',
      handle: async (c) => await o.fleet.getTerminal(c.params[0]!),
    },
    {
      method: 'POST',
      pattern: /^\/v1\/terminals\/([^/]+)$/,
      access: 'admin',
      handle: async (c) => await o.fleet.updateTerminal(c.params[0]!, await c.body()),
    },
    {
      method: 'GET',
      pattern: /^\/v1\/transactions$/,
      access: 'admin',
      handle: async (c) => await o.ledger.list(c.query),
    },
    {
      method: 'POST',
      pattern: /^\/v1\/connectedTerminals$/,
      access: 'admin',
      handle: async (c) => await o.fleet.connectedTerminals(await c.body(), await o.connectedIds()),
    },
    {
      method: 'POST',
      pattern: /^\/v1\/webhook-endpoints$/,
      access: 'admin',
      created: true,
      handle: async (c) => await o.webhooks.createEndpoint(await c.body()),
    },
    {
      method: 'GET',
      pattern: /^\/v1\/webhook-endpoints$/,
      access: 'admin',
      handle: async (c) => await o.webhooks.listEndpoints(c.query),
    },
    {
      method: 'DELETE',
      pattern: /^\/v1\/webhook-endpoints\/([^/]+)$/,
      access: 'admin',
      handle: async (c) => await o.webhooks.deleteEndpoint(c.params[0]!),
    },
    {
      method: 'GET',
      pattern: /^\/v1\/webhook-endpoints\/([^/]+)$/,
      access: 'admin',
      handle: async (c) => await o.webhooks.getEndpoint(c.params[0]!),
    },
    ...rolloutRoutes(o),
    // The agent's own calls outside the link, authenticated by its client certificate.
    {
      method: 'POST',
      pattern: /^\/v1\/agent\/certificate$/,
      access: 'terminal',
      handle: async (c) => {
        const body = (await c.body()) as { csr?: unknown };
        if (typeof body.csr !== 'string') throw new Refusal('invalid_request', 'csr (PEM) is required');
        return await o.enrollment.renewCertificate(c.terminalId, body.csr);
      },
    },
    {
      method: 'GET',
      pattern: /^\/v1\/agent\/releases\/([^/]+)\/artifact$/,
      access: 'terminal',
      handle: async (c) => new FileBody(await o.releases.artifact(c.params[0]!), 'application/gzip'),
    },
    {
      method: 'POST',
      pattern: /^\/v1\/agent\/decommission$/,
      access: 'terminal',
      handle: async (c) => {
        await o.fleet.deactivateTerminal(c.terminalId, 'decommissioned on the device');
        return { terminalId: c.terminalId, deactivated: true };
      },
    },
  ];
  const token = Buffer.from(o.adminToken);

  function authorised(req: IncomingMessage): boolean {
    const auth = req.headers.authorization;
    const presented = auth?.startsWith('Bearer ') ? auth.slice(7) : req.headers['x-api-key'];
    if (typeof presented !== 'string') return false;
    const b = Buffer.from(presented);
    return b.length === token.length && timingSafeEqual(b, token);
  }

  return (req, res) => {
    // Answered before its body has all arrived (a refusal, a route that reads none): the
    // connection closes after the answer, instead of waiting for whatever the client still sends.
    const closeIfIncomplete = () => {
      if (!req.complete && !res.headersSent) res.setHeader('connection', 'close');
    };
    void (async () => {
      try {
        const url = new URL(req.url ?? '/', 'https://cloud.invalid');
        const matching = routes.filter((r) => r.pattern.test(url.pathname));
        if (matching.length === 0) throw new Refusal('not_found', `no route ${url.pathname}`);
        const route = matching.find((r) => r.method === req.method);
        if (!route)
          throw new Refusal('method_not_allowed', `${req.method} is not allowed on ${url.pathname}`);
        if (route.access === 'admin' && !authorised(req)) {
          throw new Refusal('unauthorized', 'missing or wrong admin token (Authorization: Bearer <token>)');
        }
        let terminalId = '';
        if (route.access === 'terminal') {
          const who = await authenticateTerminal(req.socket as TLSSocket, o);
          if ('refused' in who) {
            o.log.warn(
              {
                status: statusOf(who.refused),
                code: who.refused.code,
                path: url.pathname,
                source: source(req),
              },
              `terminal request refused: ${who.refused.message}`,
            );
            throw who.refused;
          }
          terminalId = who.terminalId;
        }
        const params = route.pattern.exec(url.pathname)!.slice(1).map(decodePathSegment);
        const result = await route.handle({
          req,
          params,
          query: checkQuery(url.searchParams),
          body: () => readJsonBody(req, MAX_BODY_BYTES, o.bodyTimeoutMs),
          terminalId,
        });
        closeIfIncomplete();
        if (result instanceof FileBody) {
          await sendFile(req, res, result.file, result.contentType);
          return;
        }
        if (result instanceof RawBody) {
          res.writeHead(result.status, {
            'content-type': result.contentType,
            'content-length': result.body.length,
            ...result.headers,
          });
          res.end(result.body);
          return;
        }
        sendJson(res, route.created ? 201 : 200, result);
      } catch (err) {
        closeIfIncomplete();
        if (isRefusal(err)) return sendError(res, err);
        if (isStoreUnavailable(err)) {
          o.log.warn({ err: (err as Error).message, path: req.url?.split('?')[0] }, 'store unavailable');
          return sendError(res, STORE_UNAVAILABLE);
        }
        o.log.error({ err: (err as Error).message, stack: (err as Error).stack }, 'REST handler failed');
        sendError(res, new Refusal('internal_error', 'internal error'));
      }
    })();
  };
}
