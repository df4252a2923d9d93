import type { TerminalView } from '../../fleet/fleet-service.js';
import { html, type SafeHtml } from '../html.js';
import type { PortalSession } from '../portal-sessions.js';
import { ago, certificateExpiry, connectedMark, poiid, statusBadge, statusWord, unixOf } from './format.js';
import { layout } from './layout.js';

/** What the terminals table shows: the API's filters (status, store, search, page) and a sort of the page. */
export interface TerminalFilter {
  status: string;
  q: string;
  sort: string;
  locationId: string;
  starting_after: string;
}

export const TERMINAL_STATUSES = [
  'online',
  'needs_attention',
  'offline',
  'provisioning',
  'error',
  'deactivated',
] as const;

/** One page of the table: the API's `limit` at most. */
export const PAGE_SIZE = 100;

const SORTS: Record<string, string> = {
  newest: 'Newest',
  name: 'Name',
  status: 'Status',
  lastSeen: 'Last heartbeat',
  certificate: 'Certificate expiration',
};

export function filterOf(query: URLSearchParams): TerminalFilter {
  const status = query.get('status') ?? '';
  const sort = query.get('sort') ?? 'newest';
  const short = (k: string) => (query.get(k) ?? '').slice(0, 100);
  return {
    status: (TERMINAL_STATUSES as readonly string[]).includes(status) ? status : '',
    q: short('q').trim(),
    sort: sort in SORTS ? sort : 'newest',
    locationId: short('locationId'),
    starting_after: short('starting_after'),
  };
}

/** The REST API's query for a filter (`GET /v1/terminals`): filtering and paging happen in the store. */
export function apiQuery(f: TerminalFilter): URLSearchParams {
  const q = new URLSearchParams({ limit: String(PAGE_SIZE) });
  if (f.status) q.set('status', f.status);
  if (f.locationId) q.set('locationId', f.locationId);
  if (f.q) q.set('q', f.q);
  if (f.starting_after) q.set('starting_after', f.starting_after);
  return q;
}

const STATUS_ORDER = Object.fromEntries(
  ['error', 'offline', 'needs_attention', 'provisioning', 'online', 'deactivated'].map((s, i) => [s, i]),
);

/** Sorts one page (the API's order is newest first). */
export function sortPage(rows: TerminalView[], sort: string): TerminalView[] {
  const by: Record<string, (a: TerminalView, b: TerminalView) => number> = {
    newest: () => 0,
    name: (a, b) => a.name.localeCompare(b.name),
    status: (a, b) => (STATUS_ORDER[a.status] ?? 9) - (STATUS_ORDER[b.status] ?? 9),
    lastSeen: (a, b) => (b.lastSeen ?? 0) - (a.lastSeen ?? 0),
    certificate: (a, b) => (unixOf(a.certificate.notAfter) ?? 0) - (unixOf(b.certificate.notAfter) ?? 0),
  };
  return [...rows].sort((a, b) => by[sort]!(a, b));
}

export function queryString(f: Partial<TerminalFilter>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(f)) if (v) q.set(k, v);
  const s = q.toString();
  return s === '' ? '' : `?${s}`;
}

/** The table body on its own: what the page polls to stay live (htmx swaps it in place). */
export function terminalRows(rows: TerminalView[], f: TerminalFilter, nowMs: number): SafeHtml {
  return html`<tbody id="terminal-rows" hx-get="/portal/terminals/rows${queryString(f)}" hx-trigger="every 3s" hx-swap="outerHTML">
${
  rows.length === 0
    ? html`<tr><td colspan="8" class="muted">No terminal matches.</td></tr>`
    : sortPage(rows, f.sort).map(
        (t) => html`<tr data-terminal-id="${t.id}">
<td><a href="/portal/terminals/${encodeURIComponent(t.id)}">${t.name}</a><br><span class="muted">${poiid(t) ?? t.serialNumber ?? t.id}</span></td>
<td>${statusBadge(t.status, t.statusReason)}</td>
<td>${connectedMark(t.connected)}</td>
<td>${ago(t.lastSeen, nowMs)}</td>
<td>${certificateExpiry(t.certificate.notAfter, nowMs)}</td>
<td>${t.softwareVersion ?? html`<span class="muted">—</span>`}</td>
<td>${t.batteryLevel === null ? html`<span class="muted">—</span>` : `${t.batteryLevel} %`}</td>
<td>${t.locked ? html`<span class="warn">Locked</span>` : ''}</td>
</tr>`,
      )
}
</tbody>`;
}

export function terminalsPage(
  session: PortalSession,
  page: { data: TerminalView[]; has_more: boolean },
  f: TerminalFilter,
  stores: { id: string; name: string }[],
  nowMs: number,
): SafeHtml {
  const store = stores.find((l) => l.id === f.locationId);
  const title = store ? `Terminals of ${store.name}` : 'Terminals';
  const last = page.data.at(-1);
  return layout(
    title,
    session,
    html`${store ? html`<p class="crumbs"><a href="/portal/organizations">Organizations</a> › ${store.name}</p>` : ''}
<h1>${title}</h1>
<form class="filters" method="get" action="/portal/terminals" role="search">
<label>Search <input type="search" name="q" value="${f.q}" placeholder="exact name, serial or POIID"></label>
<label>Status <select name="status">
<option value="">any</option>
${TERMINAL_STATUSES.map((s) => html`<option value="${s}"${f.status === s ? html` selected` : ''}>${statusWord(s)}</option>`)}
</select></label>
<label>Store <select name="locationId">
<option value="">any</option>
${stores.map((l) => html`<option value="${l.id}"${f.locationId === l.id ? html` selected` : ''}>${l.name}</option>`)}
</select></label>
<label>Sort by <select name="sort">
${Object.entries(SORTS).map(([k, v]) => html`<option value="${k}"${f.sort === k ? html` selected` : ''}>${v}</option>`)}
</select></label>
<button type="submit">Apply</button>
</form>
<div class="table-wrap">
<table>
<caption class="visually-hidden">Terminals, ${page.data.length} shown; the table updates by itself</caption>
<thead><tr><th scope="col">Name</th><th scope="col">Status</th><th scope="col">Websocket</th><th scope="col">Last heartbeat</th>
<th scope="col">Certificate expiration</th><th scope="col">Software</th><th scope="col">Battery</th><th scope="col">Lock</th></tr></thead>
${terminalRows(page.data, f, nowMs)}
</table>
</div>
<nav aria-label="Pages">
${f.starting_after ? html`<a href="/portal/terminals${queryString({ ...f, starting_after: '' })}">First page</a>` : ''}
${page.has_more && last ? html` <a href="/portal/terminals${queryString({ ...f, starting_after: last.id })}">Next ${PAGE_SIZE} →</a>` : ''}
</nav>`,
  );
}
