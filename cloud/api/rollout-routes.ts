import { MAX_LOG_BYTES } from '../../protocol/actions.js';
import type { ActionService } from '../actions/action-service.js';
import type { DeploymentService } from '../deployments/deployment-service.js';
import { pageOf } from '../list-page.js';
import { readBody } from './http-json.js';
import { RawBody, type Route } from './route.js';

/**
 * Issue 24's routes: deployments (admin) and the collect_logs bundles — the terminal's upload
 * (client certificate) and the operator's download (admin).
 */
export function rolloutRoutes(o: {
  deployments: DeploymentService;
  actions: ActionService;
  bodyTimeoutMs: number;
}): Route[] {
  const d = o.deployments;
  const verb = (name: 'pause' | 'resume' | 'cancel'): Route => ({
    method: 'POST',
    pattern: new RegExp(`^/v1/deployments/([^/]+)/${name}$`),
    access: 'admin',
    handle: async (c) => await d[name](c.params[0]!),
  });
  return [
    {
      method: 'POST',
      pattern: /^\/v1\/deployments$/,
      access: 'admin',
      created: true,
      handle: async (c) => await d.create(await c.body()),
    },
    {
      method: 'GET',
      pattern: /^\/v1\/deployments$/,
      access: 'admin',
      handle: async (c) => await d.list(pageOf(c.query)),
    },
    {
      method: 'GET',
      pattern: /^\/v1\/deployments\/([^/]+)$/,
      access: 'admin',
      handle: async (c) => await d.get(c.params[0]!),
    },
    {
      method: 'GET',
      pattern: /^\/v1\/deployments\/([^/]+)\/terminals$/,
      access: 'admin',
      handle: async (c) => await d.targets(c.params[0]!, c.query),
    },
    verb('pause'),
    verb('resume'),
    verb('cancel'),
    {
      method: 'PUT',
      pattern: /^\/v1\/agent\/actions\/([^/]+)\/logs$/,
      access: 'terminal',
      handle: async (c) => {
        // A gzip of at most MAX_LOG_BYTES of text is smaller than it; a little room for the header.
        const body = await readBody(c.req, MAX_LOG_BYTES + 64 * 1024, o.bodyTimeoutMs, {
          tooLarge: (max) => `the logs may be at most ${max} bytes gzipped`,
          late: (ms) => `the logs did not arrive within ${ms} ms`,
        });
        return await o.actions.uploadLogs(c.terminalId, c.params[0]!, body);
      },
    },
    {
      method: 'GET',
      pattern: /^\/v1\/terminals\/([^/]+)\/actions\/([^/]+)\/logs$/,
      access: 'admin',
      handle: async (c) =>
        new RawBody('application/gzip', await o.actions.logs(c.params[0]!, c.params[1]!), 200, {
          'content-disposition': `attachment; filename="${c.params[1]!.replace(/[^\w-]/g, '')}-logs.txt.gz"`,
        }),
    },
  ];
}
