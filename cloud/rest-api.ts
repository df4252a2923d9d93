import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ENROLL_PATH } from '../protocol/version.js';
import type { FleetService } from './fleet-service.js';
import { ApiError, readJsonBody, sendError, sendJson } from './http-json.js';
import type { TransactionLedger } from './transaction-ledger.js';

/**
 * The fleet REST API (VINR-shaped) and the agent-facing enrollment endpoint, on the same HTTPS port
 * as the agent gateway. Admin routes need `Authorization: Bearer <token>` (or `X-Api-Key`).
 */
export interface RestApiOptions {
  fleet: FleetService;
  ledger: TransactionLedger;
  adminToken: string;
  connectedIds(): Iterable<string>;
  log: { error(obj: object, msg: string): void };
}

interface Route {
  method: string;
  pattern: RegExp;
  admin: boolean;
  handle(ctx: {
    req: IncomingMessage;
    params: string[];
    query: URLSearchParams;
    body(): Promise<unknown>;
  }): unknown;
}

export function createRestHandler(o: RestApiOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const routes: Route[] = [
    {
      method: 'POST',
      pattern: /^\/v1\/locations$/,
      admin: true,
      handle: async (c) => o.fleet.createLocation(await c.body()),
    },
    {
      method: 'GET',
      pattern: /^\/v1\/locations\/([^/]+)$/,
      admin: true,
      handle: (c) => o.fleet.getLocation(c.params[0]!),
    },
    {
      method: 'POST',
      pattern: /^\/v1\/enrollment-codes$/,
      admin: true,
      handle: async (c) => o.fleet.createEnrollmentCode(await c.body()),
    },
    {
      method: 'POST',
      pattern: new RegExp(`^${ENROLL_PATH}$`),
      admin: false,
      handle: async (c) => o.fleet.enroll(await c.body(), c.req.socket.remoteAddress ?? 'unknown'),
    },
    {
      method: 'PUT',
      pattern: /^\/v1\/locations\/([^/]+)\/terminal-config$/,
      admin: true,
      handle: async (c) => o.fleet.setLocationTemplate(c.params[0]!, await c.body()),
    },
    {
      method: 'GET',
      pattern: /^\/v1\/locations\/([^/]+)\/terminal-config$/,
      admin: true,
      handle: (c) => o.fleet.getLocationTemplate(c.params[0]!),
    },
    {
      method: 'POST',
      pattern: /^\/v1\/terminals\/([^/]+)\/configure$/,
      admin: true,
      handle: async (c) =>
        o.fleet.configureTerminal(c.params[0]!, await c.body(), c.query.get('validate') !== 'false'),
    },
    {
      method: 'GET',
      pattern: /^\/v1\/terminals\/([^/]+)\/config$/,
      admin: true,
      handle: (c) => o.fleet.getTerminalConfig(c.params[0]!),
    },
    {
      method: 'GET',
      pattern: /^\/v1\/terminals$/,
      admin: true,
      handle: (c) => o.fleet.listTerminals(c.query),
    },
    {
      method: 'GET',
      pattern: /^\/v1\/terminals\/([^/]+)$/,
      admin: true,
      handle: (c) => o.fleet.getTerminal(c.params[0]!),
    },
    {
      method: 'GET',
      pattern: /^\/v1\/transactions$/,
      admin: true,
      handle: (c) => o.ledger.list(c.query),
    },
    {
      method: 'POST',
      pattern: /^\/v1\/connectedTerminals$/,
      admin: true,
      handle: async (c) => o.fleet.connectedTerminals(await c.body(), o.connectedIds()),
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
    void (async () => {
      try {
        const url = new URL(req.url ?? '/', 'https://cloud.invalid');
        const matching = routes.filter((r) => r.pattern.test(url.pathname));
        if (matching.length === 0) throw new ApiError(404, 'not_found', `no route ${url.pathname}`);
        const route = matching.find((r) => r.method === req.method);
        if (!route)
          throw new ApiError(405, 'method_not_allowed', `${req.method} is not allowed on ${url.pathname}`);
        if (route.admin && !authorised(req)) {
          throw new ApiError(
            401,
            'unauthorized',
            'missing or wrong admin token (Authorization: Bearer <token>)',
          );
        }
        const params = route.pattern.exec(url.pathname)!.slice(1).map(decodeURIComponent);
        const result = await route.handle({
          req,
          params,
          query: url.searchParams,
          body: () => readJsonBody(req),
        });
        sendJson(
          res,
          req.method === 'POST' && /\/(locations|enrollment-codes)$/.test(url.pathname) ? 201 : 200,
          result,
        );
      } catch (err) {
        if (err instanceof ApiError) return sendError(res, err);
        o.log.error({ err: (err as Error).message, stack: (err as Error).stack }, 'REST handler failed');
        sendError(res, new ApiError(500, 'internal_error', 'internal error'));
      }
    })();
  };
}
