import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { isRefusal, Refusal } from '../../protocol/refusal.js';
import type { ActionService } from '../actions/action-service.js';
import { checkQuery, decodePathSegment } from '../api/http-json.js';
import { STORE_UNAVAILABLE, statusOf } from '../api/refusal-status.js';
import type { DeploymentService } from '../deployments/deployment-service.js';
import { qrPng } from '../enrollment/enrollment-qr.js';
import type { EnrollmentService } from '../enrollment/enrollment-service.js';
import type { FleetService } from '../fleet/fleet-service.js';
import { pageOf } from '../list-page.js';
import { isStoreUnavailable } from '../store/store-errors.js';
import type { AuditTrail } from './audit-trail.js';
import type { SafeHtml } from './html.js';
import type { OperatorAccounts } from './operator-accounts.js';
import {
  cancelDeploymentPage,
  deploymentLive,
  deploymentPage,
  deploymentsPage,
} from './pages/deployments.js';
import { messagePage } from './pages/layout.js';
import { operatorsPage } from './pages/operators.js';
import { organizationsPage, storeConfigPage, storesPage } from './pages/organizations.js';
import { codePage, registerPage } from './pages/register.js';
import { signInPage } from './pages/sign-in.js';
import { templateFromForm } from './pages/template-form.js';
import {
  type ConnectionCheck,
  checkResult,
  confirmPage,
  type TerminalPageData,
  terminalLive,
  terminalPage,
} from './pages/terminal.js';
import { apiQuery, filterOf, terminalRows, terminalsPage } from './pages/terminals.js';
import { htmxSource, PORTAL_CSS, PORTAL_JS } from './portal-assets.js';
import {
  clearCookie,
  cookieOf,
  readForm,
  redirect,
  SESSION_COOKIE,
  SIGN_IN_COOKIE,
  sameOrigin,
  sendAsset,
  sendPage,
  setCookie,
} from './portal-http.js';
import { mayDo, type PortalAction } from './portal-roles.js';
import { type PortalSession, type PortalSessions, sameToken } from './portal-sessions.js';

/**
 * The support portal at `/portal/` on the cloud's HTTPS port: server-rendered pages over the same
 * services as the REST API, so every rule and every validation message is the API's. Reading works
 * without JavaScript; htmx (served by the cloud) only keeps the live parts fresh. Every POST needs
 * a session, the session's CSRF token and the same origin; every action is checked against the
 * role table (portal-roles.ts) and audited, refused ones too.
 */
export interface PortalOptions {
  fleet: FleetService;
  enrollment: EnrollmentService;
  actions: ActionService;
  deployments: DeploymentService;
  accounts: OperatorAccounts;
  sessions: PortalSessions;
  audit: AuditTrail;
  now(): number;
  bodyTimeoutMs: number;
  source(req: IncomingMessage): string;
  log: { error(obj: object, msg: string): void; info(obj: object, msg: string): void };
}

type Answer =
  | { page: SafeHtml; status?: number; headers?: Record<string, string | string[]> }
  | { redirect: string; headers?: Record<string, string | string[]> }
  | { asset: Buffer; type: string };

interface Ctx {
  req: IncomingMessage;
  params: string[];
  query: URLSearchParams;
  session: PortalSession;
  form: URLSearchParams;
}

interface Route {
  method: 'GET' | 'POST';
  pattern: RegExp;
  /** What the operator must be allowed to do; `public` needs no session. */
  may: PortalAction | 'public';
  /** For the audit log: what a POST does (`terminal.reboot`…); its target is params[0]. */
  audit?: string | ((c: Ctx) => string);
  handle(c: Ctx): Promise<Answer> | Answer;
}

/** After a form post: a short message for the next page, from a fixed list (nothing echoed from the URL). */
const FLASH: Record<string, string> = {
  reboot: 'Reboot queued: the terminal runs it when no sale is in progress.',
  lock: 'Lock queued: the terminal refuses new sales once it runs it.',
  unlock: 'Unlock queued.',
  renamed: 'Renamed.',
  diagnostics: 'Diagnostics report received.',
  deactivated: 'Terminal deactivated: its certificate is refused from now on.',
  saved: 'Saved, and pushed to the terminals of this store.',
  rotate: 'The terminal was asked to renew its certificate now; the new expiry shows once it has.',
  revoked: 'Certificate revoked: the link is closed and the certificate refused from now on.',
  collect_logs: 'Logs asked for: the bundle shows under Actions once the terminal uploaded it.',
  paused: 'Paused: no terminal is asked until it is resumed; those updating finish.',
  resumed: 'Resumed.',
  cancelled: 'Cancelled: the terminals not asked yet are skipped.',
};

export function createPortalHandler(o: PortalOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const nowMs = () => o.now();
  const orgs = o.fleet.organizations;
  /** The stores a select offers (the first page of them: a fleet with more is searched, not scrolled). */
  const locations = async () =>
    (await orgs.listLocations(new URLSearchParams({ limit: '100' }))).data
      .filter((l) => l.active)
      .map((l) => ({ id: l.id, name: l.name }));
  const storeName = async (id: string) => {
    try {
      return (await orgs.getLocation(id)).name;
    } catch {
      return null;
    }
  };
  const templateOf = async (locationId: string) =>
    (await o.fleet.getLocationTemplate(locationId)).template as Record<string, Record<string, unknown>>;
  const terminalsOf = async (query: URLSearchParams) =>
    await o.fleet.listTerminals(apiQuery(filterOf(query)));
  const flashOf = (q: URLSearchParams) => {
    const k = q.get('done');
    return k !== null && FLASH[k] ? { ok: true, text: FLASH[k]! } : undefined;
  };

  async function terminalData(
    id: string,
    flash?: TerminalPageData['flash'],
    check?: ConnectionCheck,
  ): Promise<TerminalPageData> {
    const terminal = await o.fleet.getTerminal(id);
    let diagnostics: Record<string, unknown> | null = null;
    try {
      diagnostics = await o.fleet.lastDiagnostics(id);
    } catch {}
    const config = (await o.fleet.getTerminalConfig(id)) as TerminalPageData['config'];
    return {
      terminal,
      locationName: await storeName(terminal.locationId),
      config,
      actions: (await o.actions.list(id)).data,
      audit: await o.audit.forTarget(id),
      diagnostics,
      events: (await o.fleet.terminalEvents(id, new URLSearchParams({ limit: '20' }))).data,
      escalation: await o.fleet.escalation(id),
      ...(flash ? { flash } : {}),
      ...(check ? { check } : {}),
    };
  }

  /** A terminal page again, with why the form was refused (status from the one refusal table). */
  async function refusedOnTerminal(c: Ctx, r: Refusal): Promise<Answer> {
    return {
      page: terminalPage(
        c.session,
        await terminalData(c.params[0]!, { ok: false, text: `${r.code}: ${r.message}` }),
        nowMs(),
      ),
      status: statusOf(r),
    };
  }

  const tpath = (id: string, rest = '') => `/portal/terminals/${encodeURIComponent(id)}${rest}`;

  const dpath = (id: string, rest = '') => `/portal/deployments/${encodeURIComponent(id)}${rest}`;
  const deploymentData = async (id: string) => {
    const d = await o.deployments.get(id);
    const failed = (await o.deployments.targets(id, new URLSearchParams({ limit: '100' }))).data.filter(
      (t) => t.state === 'failed',
    );
    return { d, failed };
  };
  const deploymentVerb = (name: 'pause' | 'resume' | 'cancel', done: string): Route => ({
    method: 'POST',
    pattern: new RegExp(`^/portal/deployments/([^/]+)/${name}$`),
    may: 'deployment.manage',
    audit: `deployment.${name}`,
    handle: async (c) => {
      try {
        await o.deployments[name](c.params[0]!);
      } catch (err) {
        if (!isRefusal(err) || err.code === 'not_found') throw err;
        const { d, failed } = await deploymentData(c.params[0]!);
        return {
          page: deploymentPage(c.session, d, failed, nowMs(), {
            ok: false,
            text: `${err.code}: ${err.message}`,
          }),
          status: statusOf(err),
        };
      }
      return { redirect: dpath(c.params[0]!, `?done=${done}`) };
    },
  });

  const routes: Route[] = [
    {
      method: 'GET',
      pattern: /^\/portal\/deployments$/,
      may: 'view',
      handle: async (c) => ({
        page: deploymentsPage(
          c.session,
          await o.deployments.list(pageOf(c.query, 20)),
          c.query.get('starting_after') ?? '',
          nowMs(),
        ),
      }),
    },
    {
      method: 'GET',
      pattern: /^\/portal\/deployments\/([^/]+)$/,
      may: 'view',
      handle: async (c) => {
        const { d, failed } = await deploymentData(c.params[0]!);
        return { page: deploymentPage(c.session, d, failed, nowMs(), flashOf(c.query)) };
      },
    },
    {
      method: 'GET',
      pattern: /^\/portal\/deployments\/([^/]+)\/live$/,
      may: 'view',
      handle: async (c) => ({ page: deploymentLive(await o.deployments.get(c.params[0]!)) }),
    },
    {
      method: 'GET',
      pattern: /^\/portal\/deployments\/([^/]+)\/cancel$/,
      may: 'deployment.manage',
      handle: async (c) => ({ page: cancelDeploymentPage(c.session, await o.deployments.get(c.params[0]!)) }),
    },
    deploymentVerb('pause', 'paused'),
    deploymentVerb('resume', 'resumed'),
    deploymentVerb('cancel', 'cancelled'),
    {
      method: 'GET',
      pattern: /^\/portal\/terminals\/([^/]+)\/actions\/([^/]+)\/logs$/,
      may: 'terminal.collect_logs',
      // Shown as text in the browser: support reads it there, or saves it.
      handle: async (c) => ({
        asset: gunzipSync(await o.actions.logs(c.params[0]!, c.params[1]!)),
        type: 'text/plain; charset=utf-8',
      }),
    },
    {
      method: 'GET',
      pattern: /^\/portal\/assets\/portal\.css$/,
      may: 'public',
      handle: () => ({ asset: Buffer.from(PORTAL_CSS), type: 'text/css; charset=utf-8' }),
    },
    {
      method: 'GET',
      pattern: /^\/portal\/assets\/htmx\.min\.js$/,
      may: 'public',
      handle: () => ({ asset: htmxSource(), type: 'text/javascript; charset=utf-8' }),
    },
    {
      method: 'GET',
      pattern: /^\/portal\/assets\/portal\.js$/,
      may: 'public',
      handle: () => ({ asset: Buffer.from(PORTAL_JS), type: 'text/javascript; charset=utf-8' }),
    },
    {
      method: 'GET',
      pattern: /^\/portal\/?$/,
      may: 'view',
      handle: () => ({ redirect: '/portal/organizations' }),
    },
    {
      method: 'GET',
      pattern: /^\/portal\/organizations$/,
      may: 'view',
      handle: async (c) => {
        const after = (c.query.get('starting_after') ?? '').slice(0, 100);
        const q = new URLSearchParams({ limit: '100', ...(after ? { starting_after: after } : {}) });
        return { page: organizationsPage(c.session, await orgs.listOrganizations(q), after) };
      },
    },
    {
      method: 'GET',
      pattern: /^\/portal\/organizations\/([^/]+)$/,
      may: 'view',
      handle: async (c) => {
        const org = await orgs.getOrganization(c.params[0]!);
        const stores = await orgs.listLocations(
          new URLSearchParams({ organizationId: org.id, limit: '100' }),
        );
        return { page: storesPage(c.session, org, stores) };
      },
    },
    {
      method: 'GET',
      pattern: /^\/portal\/stores\/([^/]+)\/config$/,
      may: 'view',
      handle: async (c) => {
        const store = await orgs.getLocation(c.params[0]!);
        return { page: storeConfigPage(c.session, store, await templateOf(store.id), flashOf(c.query)) };
      },
    },
    {
      method: 'POST',
      pattern: /^\/portal\/stores\/([^/]+)\/config$/,
      may: 'location.configure',
      audit: 'location.configure',
      handle: async (c) => {
        const store = await orgs.getLocation(c.params[0]!);
        const asJson = c.form.get('as') === 'json';
        const text = c.form.get('template') ?? '';
        let body: Record<string, Record<string, unknown>> = {};
        try {
          if (asJson) {
            try {
              body = JSON.parse(text);
            } catch {
              throw new Refusal('invalid_json', 'the template is not valid JSON');
            }
          } else body = templateFromForm(c.form, await templateOf(store.id));
          await o.fleet.setLocationTemplate(store.id, body);
        } catch (err) {
          if (!isRefusal(err)) throw err;
          // The page again with what was typed and the API's words for what is wrong with it.
          const flash = { ok: false, text: `${err.code}: ${err.message}` };
          return {
            page: asJson
              ? storeConfigPage(c.session, store, await templateOf(store.id), flash, text)
              : storeConfigPage(c.session, store, body, flash),
            status: statusOf(err),
          };
        }
        return { redirect: `/portal/stores/${encodeURIComponent(store.id)}/config?done=saved` };
      },
    },
    {
      method: 'GET',
      pattern: /^\/portal\/terminals$/,
      may: 'view',
      handle: async (c) => ({
        page: terminalsPage(
          c.session,
          await terminalsOf(c.query),
          filterOf(c.query),
          await locations(),
          nowMs(),
        ),
      }),
    },
    {
      method: 'GET',
      pattern: /^\/portal\/terminals\/rows$/,
      may: 'view',
      handle: async (c) => ({
        page: terminalRows((await terminalsOf(c.query)).data, filterOf(c.query), nowMs()),
      }),
    },
    {
      method: 'POST',
      pattern: /^\/portal\/terminals\/([^/]+)\/check-connection$/,
      may: 'terminal.check_connection',
      audit: 'terminal.check_connection',
      handle: async (c) => {
        const check = (await o.fleet.checkConnection(c.params[0]!, {})) as unknown as ConnectionCheck;
        // htmx swaps the answer in place; without JavaScript the whole page comes back with it.
        if (c.req.headers['hx-request'] === 'true') return { page: checkResult(check) };
        return { page: terminalPage(c.session, await terminalData(c.params[0]!, undefined, check), nowMs()) };
      },
    },
    {
      method: 'POST',
      pattern: /^\/portal\/terminals\/([^/]+)\/rotate-certificate$/,
      may: 'terminal.rotate_certificate',
      audit: 'terminal.rotate_certificate',
      handle: async (c) => {
        try {
          await o.fleet.rotateCertificate(c.params[0]!);
        } catch (err) {
          if (isRefusal(err) && err.code !== 'not_found') return await refusedOnTerminal(c, err);
          throw err;
        }
        return { redirect: tpath(c.params[0]!, '?done=rotate') };
      },
    },
    {
      method: 'GET',
      pattern: /^\/portal\/terminals\/([^/]+)\/reprovision$/,
      may: 'terminal.reprovision',
      handle: async (c) => ({
        page: confirmPage(c.session, await o.fleet.getTerminal(c.params[0]!), {
          title: 'Reprovision terminal',
          explain:
            'You get an enrollment code bound to this terminal. Enrolling the device with it keeps this record — its id, name, store, configuration and history — and replaces its certificate on first use. Then confirm that its heartbeat resumes.',
          action: '/reprovision',
          button: 'Create reprovision code',
        }),
      }),
    },
    {
      method: 'POST',
      pattern: /^\/portal\/terminals\/([^/]+)\/reprovision$/,
      may: 'terminal.reprovision',
      audit: 'terminal.reprovision',
      handle: async (c) => {
        const code = await o.enrollment.reprovisionTerminal(c.params[0]!, {});
        return {
          page: codePage(
            c.session,
            { ...code, locationName: (await storeName(code.locationId)) ?? code.locationId },
            'Reprovision code',
          ),
          status: 201,
        };
      },
    },
    {
      method: 'GET',
      pattern: /^\/portal\/terminals\/([^/]+)\/revoke-certificate$/,
      may: 'terminal.revoke_certificate',
      handle: async (c) => ({
        page: confirmPage(c.session, await o.fleet.getTerminal(c.params[0]!), {
          title: 'Revoke certificate',
          explain:
            'The terminal’s link closes at once and its certificate is refused from then on; it shows Error until it is reprovisioned.',
          action: '/revoke-certificate',
          button: 'Revoke',
          reasonField: true,
        }),
      }),
    },
    {
      method: 'POST',
      pattern: /^\/portal\/terminals\/([^/]+)\/revoke-certificate$/,
      may: 'terminal.revoke_certificate',
      audit: 'terminal.revoke_certificate',
      handle: async (c) => {
        const reason = (c.form.get('reason') ?? '').trim();
        await o.fleet.revokeCertificate(c.params[0]!, reason === '' ? {} : { reason });
        return { redirect: tpath(c.params[0]!, '?done=revoked') };
      },
    },
    {
      method: 'GET',
      pattern: /^\/portal\/terminals\/([^/]+)$/,
      may: 'view',
      handle: async (c) => ({
        page: terminalPage(c.session, await terminalData(c.params[0]!, flashOf(c.query)), nowMs()),
      }),
    },
    {
      method: 'GET',
      pattern: /^\/portal\/terminals\/([^/]+)\/live$/,
      may: 'view',
      // Polled every 3 s by each open terminal page: only what the live part shows.
      handle: async (c) => ({
        page: terminalLive(
          {
            terminal: await o.fleet.getTerminal(c.params[0]!),
            actions: (await o.actions.list(c.params[0]!)).data,
          },
          nowMs(),
        ),
      }),
    },
    {
      method: 'POST',
      pattern: /^\/portal\/terminals\/([^/]+)\/actions$/,
      may: 'view',
      audit: (c) => `terminal.${c.form.get('type') ?? 'action'}`,
      handle: async (c) => {
        const type = c.form.get('type') ?? '';
        if (type !== 'reboot' && type !== 'lock' && type !== 'unlock' && type !== 'collect_logs')
          throw new Refusal(
            'invalid_request',
            `the portal sends reboot, lock, unlock or collect_logs (got "${type.slice(0, 40)}")`,
          );
        if (!mayDo(c.session.role, `terminal.${type}`))
          throw new Refusal('forbidden', `the ${c.session.role} role may not ${type} a terminal`);
        // The logs of the last hour: what support asks for first (the REST API takes any span).
        const at = nowMs();
        const params =
          type === 'collect_logs'
            ? { params: { since: new Date(at - 3_600_000).toISOString(), until: new Date(at).toISOString() } }
            : {};
        try {
          await o.actions.create(c.params[0]!, { type, ...params });
        } catch (err) {
          if (isRefusal(err) && err.code !== 'not_found') return await refusedOnTerminal(c, err);
          throw err;
        }
        return { redirect: tpath(c.params[0]!, `?done=${type}`) };
      },
    },
    {
      method: 'POST',
      pattern: /^\/portal\/terminals\/([^/]+)\/rename$/,
      may: 'terminal.rename',
      audit: 'terminal.rename',
      handle: async (c) => {
        try {
          await o.fleet.updateTerminal(c.params[0]!, { name: c.form.get('name') ?? '' });
        } catch (err) {
          if (isRefusal(err) && err.code !== 'not_found') return await refusedOnTerminal(c, err);
          throw err;
        }
        return { redirect: tpath(c.params[0]!, '?done=renamed') };
      },
    },
    {
      method: 'POST',
      pattern: /^\/portal\/terminals\/([^/]+)\/diagnostics$/,
      may: 'terminal.diagnostics',
      audit: 'terminal.diagnostics',
      handle: async (c) => {
        try {
          await o.fleet.runDiagnostics(c.params[0]!);
        } catch (err) {
          if (isRefusal(err) && err.code !== 'not_found') return await refusedOnTerminal(c, err);
          throw err;
        }
        return { redirect: tpath(c.params[0]!, '?done=diagnostics') };
      },
    },
    {
      method: 'GET',
      pattern: /^\/portal\/terminals\/([^/]+)\/deactivate$/,
      may: 'terminal.deactivate',
      handle: async (c) => ({
        page: confirmPage(c.session, await o.fleet.getTerminal(c.params[0]!), {
          title: 'Decommission terminal',
          explain:
            'The terminal is deactivated: its certificate is refused from now on and its link is closed. This cannot be undone; the device needs a new enrollment code to come back.',
          action: '/deactivate',
          button: 'Decommission',
          reasonField: true,
        }),
      }),
    },
    {
      method: 'POST',
      pattern: /^\/portal\/terminals\/([^/]+)\/deactivate$/,
      may: 'terminal.deactivate',
      audit: 'terminal.deactivate',
      handle: async (c) => {
        const reason = (c.form.get('reason') ?? '').trim();
        await o.fleet.deactivate(c.params[0]!, reason === '' ? {} : { reason });
        return { redirect: tpath(c.params[0]!, '?done=deactivated') };
      },
    },
    {
      method: 'GET',
      pattern: /^\/portal\/terminals\/([^/]+)\/replace$/,
      may: 'terminal.replace',
      handle: async (c) => ({
        page: confirmPage(c.session, await o.fleet.getTerminal(c.params[0]!), {
          title: 'Replace device',
          explain:
            'A new device takes this terminal’s name, store and configuration: you get an enrollment code for it. When the new device enrolls, this one is deactivated.',
          action: '/replace',
          button: 'Create replacement code',
        }),
      }),
    },
    {
      method: 'POST',
      pattern: /^\/portal\/terminals\/([^/]+)\/replace$/,
      may: 'terminal.replace',
      audit: 'terminal.replace',
      handle: async (c) => {
        const code = await o.enrollment.replaceTerminal(c.params[0]!, {});
        return {
          page: codePage(
            c.session,
            {
              ...code,
              locationName: (await storeName(code.locationId)) ?? code.locationId,
            },
            'Replacement enrollment code',
          ),
          status: 201,
        };
      },
    },
    {
      method: 'GET',
      pattern: /^\/portal\/operators$/,
      may: 'operator.manage',
      handle: async (c) => ({
        page: operatorsPage(c.session, await o.accounts.list(), await o.audit.recent(100), nowMs()),
      }),
    },
    {
      method: 'GET',
      pattern: /^\/portal\/register$/,
      may: 'terminal.register',
      handle: async (c) => ({
        page: registerPage(c.session, await locations(), c.query.get('locationId') ?? ''),
      }),
    },
    {
      method: 'POST',
      pattern: /^\/portal\/register$/,
      may: 'terminal.register',
      audit: 'terminal.register',
      handle: async (c) => {
        const locationId = c.form.get('locationId') ?? '';
        const terminalName = c.form.get('terminalName') ?? '';
        const ttl = Number(c.form.get('ttlSeconds') ?? '86400');
        try {
          const code = await o.enrollment.createEnrollmentCode({ locationId, terminalName, ttlSeconds: ttl });
          return {
            page: codePage(c.session, {
              ...code,
              locationName: (await storeName(locationId)) ?? locationId,
            }),
            status: 201,
          };
        } catch (err) {
          if (!isRefusal(err)) throw err;
          return {
            page: registerPage(
              c.session,
              await locations(),
              locationId,
              `${err.code}: ${err.message}`,
              terminalName,
            ),
            status: statusOf(err),
          };
        }
      },
    },
    {
      method: 'GET',
      pattern: /^\/portal\/enrollment-codes\/([^/]+)\/qr\.png$/,
      may: 'terminal.register',
      handle: async (c) => ({
        asset: await qrPng(await o.enrollment.qrPayloadOf(c.params[0]!)),
        type: 'image/png',
      }),
    },
  ];

  async function signIn(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const next = safeNext(url.searchParams.get('next'));
    if (req.method === 'GET') {
      const csrf = randomBytes(24).toString('base64url');
      sendPage(res, 200, signInPage(csrf, next), { 'set-cookie': setCookie(SIGN_IN_COOKIE, csrf, 3600) });
      return;
    }
    const form = await readForm(req, o.bodyTimeoutMs);
    const name = (form.get('name') ?? '').slice(0, 64);
    const target = safeNext(form.get('next'));
    const cookie = cookieOf(req, SIGN_IN_COOKIE);
    if (!sameOrigin(req) || !cookie || !sameToken(form.get('_csrf') ?? undefined, cookie)) {
      const csrf = randomBytes(24).toString('base64url');
      sendPage(
        res,
        403,
        signInPage(csrf, target, 'The form expired or came from elsewhere: sign in again.', name),
        {
          'set-cookie': setCookie(SIGN_IN_COOKIE, csrf, 3600),
        },
      );
      return;
    }
    try {
      const who = await o.accounts.signIn(name, form.get('password') ?? '', o.source(req));
      const { token } = await o.sessions.open(who.name);
      await o.audit.record(who.name, 'operator.sign_in', who.name, 'ok');
      redirect(res, target, {
        'set-cookie': [
          setCookie(SESSION_COOKIE, token, Math.floor(o.sessions.limits.maxMs / 1000)),
          clearCookie(SIGN_IN_COOKIE),
        ],
      });
    } catch (err) {
      if (!isRefusal(err)) throw err;
      await o.audit.record(name || '(empty)', 'operator.sign_in', null, 'refused', err.code);
      const a = statusOf(err);
      sendPage(res, a, signInPage(cookie, target, err.message, name), {
        ...(typeof err.details.retryAfterSec === 'number'
          ? { 'retry-after': String(err.details.retryAfterSec) }
          : {}),
      });
    }
  }

  async function dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://cloud.invalid');
    if (url.pathname === '/portal/sign-in' && (req.method === 'GET' || req.method === 'POST'))
      return await signIn(req, res, url);
    const session = await o.sessions.resolve(cookieOf(req, SESSION_COOKIE));
    if (url.pathname === '/portal/sign-out' && req.method === 'POST') {
      const form = await readForm(req, o.bodyTimeoutMs);
      if (session && sameToken(form.get('_csrf') ?? undefined, session.csrfToken))
        await o.sessions.close(session);
      return redirect(res, '/portal/sign-in', { 'set-cookie': clearCookie(SESSION_COOKIE) });
    }
    const matching = routes.filter((r) => r.pattern.test(url.pathname));
    const route = matching.find((r) => r.method === req.method);
    if (matching.length === 0 || !route) {
      const r =
        matching.length === 0
          ? new Refusal('not_found', `no page ${url.pathname}`)
          : new Refusal('method_not_allowed', `${req.method} is not allowed on ${url.pathname}`);
      return sendPage(res, statusOf(r), messagePage('Not found', session, r.code, r.message));
    }
    const params = route.pattern.exec(url.pathname)!.slice(1).map(decodePathSegment);
    if (route.may === 'public')
      return answer(
        res,
        await route.handle({
          req,
          params,
          query: checkQuery(url.searchParams),
          session: undefined as never,
          form: new URLSearchParams(),
        }),
      );
    if (!session) {
      // Reading pages send the browser to sign in and back; htmx's polls get told to do the same.
      // After sign-in, back to the page — for an htmx poll, the page it polls from, not the fragment.
      const current = req.headers['hx-current-url'];
      const page =
        typeof current === 'string' && current.startsWith(`https://${req.headers.host}/portal/`)
          ? current.slice(`https://${req.headers.host}`.length)
          : req.method === 'GET' && req.headers['hx-request'] !== 'true'
            ? url.pathname + url.search
            : '/portal/';
      const signInAt = `/portal/sign-in?next=${encodeURIComponent(safeNext(page))}`;
      if (req.headers['hx-request'] === 'true') {
        res.writeHead(401, { 'hx-redirect': signInAt, 'content-length': 0 });
        res.end();
        return;
      }
      if (req.method === 'GET') return redirect(res, signInAt);
      const r = new Refusal('unauthorized', 'sign in first: the session is missing or expired');
      return sendPage(res, 401, messagePage('Signed out', undefined, r.code, r.message));
    }
    let form = new URLSearchParams();
    const target = params[0] ?? null;
    const auditAs = (c: Ctx) =>
      typeof route.audit === 'function' ? route.audit(c) : (route.audit ?? `${req.method} ${url.pathname}`);
    if (req.method === 'POST') {
      form = await readForm(req, o.bodyTimeoutMs);
      const presented = form.get('_csrf') ?? (req.headers['x-csrf-token'] as string | undefined);
      if (!sameOrigin(req) || !sameToken(presented ?? undefined, session.csrfToken)) {
        await o.audit.record(
          session.operator,
          auditAs({ req, params, query: checkQuery(url.searchParams), session, form }),
          target,
          'refused',
          'csrf_failed',
        );
        const r = new Refusal(
          'csrf_failed',
          'the form carried no valid CSRF token (reload the page and try again)',
        );
        return sendPage(res, 403, messagePage('Refused', session, r.code, r.message));
      }
    }
    const ctx: Ctx = { req, params, query: checkQuery(url.searchParams), session, form };
    if (!mayDo(session.role, route.may)) {
      if (req.method === 'POST')
        await o.audit.record(session.operator, auditAs(ctx), target, 'refused', 'forbidden');
      const r = new Refusal(
        'forbidden',
        `the ${session.role} role may not do this (${route.may}); ask an admin`,
      );
      return sendPage(res, 403, messagePage('Not allowed', session, r.code, r.message));
    }
    try {
      const a = await route.handle(ctx);
      if (req.method === 'POST') {
        const refused = 'page' in a && (a.status ?? 200) >= 400;
        await o.audit.record(
          session.operator,
          auditAs(ctx),
          target,
          refused ? 'refused' : 'ok',
          auditDetail(route, form),
        );
      }
      return answer(res, a);
    } catch (err) {
      if (req.method === 'POST')
        await o.audit.record(
          session.operator,
          auditAs(ctx),
          target,
          isRefusal(err) ? 'refused' : 'failed',
          isRefusal(err) ? err.code : null,
        );
      throw err;
    }
  }

  function answer(res: ServerResponse, a: Answer): void {
    if ('redirect' in a) redirect(res, a.redirect, a.headers);
    else if ('asset' in a) sendAsset(res, a.type, a.asset);
    else sendPage(res, a.status ?? 200, a.page, a.headers);
  }

  return (req, res) => {
    void dispatch(req, res).catch((err: unknown) => {
      if (res.headersSent) return res.destroy();
      if (isRefusal(err)) {
        if (!req.complete) res.setHeader('connection', 'close');
        return sendPage(res, statusOf(err), messagePage('Refused', undefined, err.code, err.message));
      }
      if (isStoreUnavailable(err)) {
        o.log.error({ err: (err as Error).message }, 'store unavailable');
        return sendPage(
          res,
          503,
          messagePage('Unavailable', undefined, STORE_UNAVAILABLE.code, STORE_UNAVAILABLE.message),
          {
            'retry-after': '1',
          },
        );
      }
      o.log.error({ err: (err as Error).message, stack: (err as Error).stack }, 'portal handler failed');
      sendPage(res, 500, messagePage('Error', undefined, 'internal_error', 'internal error'));
    });
  };
}

/** Only a path inside the portal (never another site, never `//host`). */
function safeNext(next: string | null): string {
  // A path inside the portal in plain URL characters: no scheme, no `//host`, no backslash, no
  // `..` segment, no control character (a CR/LF would not even fit in a Location header).
  if (
    !next ||
    next.length > 500 ||
    !/^\/portal\/[A-Za-z0-9\-._~%/?=&+]*$/.test(next) ||
    next.includes('//') ||
    /(^|\/)\.\.(\/|$|\?)/.test(next)
  )
    return '/portal/';
  return next;
}

/** What the audit keeps of a form: the fields that say what was asked (never a password or token). */
function auditDetail(route: Route, form: URLSearchParams): string | null {
  const keep = ['name', 'type', 'reason', 'terminalName', 'locationId'];
  const parts = keep.filter((k) => form.has(k)).map((k) => `${k}=${(form.get(k) ?? '').slice(0, 80)}`);
  return parts.length > 0 ? parts.join(' ') : route.audit ? null : null;
}
