import type { TerminalView } from '../../fleet/fleet-service.js';
import { html, type SafeHtml } from '../html.js';
import type { PortalSession } from '../portal-sessions.js';
import { ago, certificateExpiry, connectedMark, poiid, statusBadge, statusWord } from './format.js';
import { layout } from './layout.js';

export interface TerminalFilter {
  status: string;
  q: string;
  sort: string;
  locationId: string;
}

export const TERMINAL_STATUSES = [
  'online',
  'needs_attention',
  'offline',
  'provisioning',
  'error',
  'deactivated',
] as const;

const SORTS: Record<string, string> = {
  name: 'Name',
  status: 'Status',
  lastSeen: 'Last heartbeat',
  certificate: 'Certificate expiration',
};

export function filterOf(query: URLSearchParams): TerminalFilter {
  const status = query.get('status') ?? '';
  const sort = query.get('sort') ?? 'name';
  return {
    status: (TERMINAL_STATUSES as readonly string[]).includes(status) ? status : '',
    q: (query.get('q') ?? '').slice(0, 100),
    sort: sort in SORTS ? sort : 'name',
    locationId: (query.get('locationId') ?? '').slice(0, 100),
  };
}

const STATUS_ORDER = Object.fromEntries(
  ['error', 'offline', 'needs_attention', 'provisioning', 'online', 'deactivated'].map((s, i) => [s, i]),
);

/** Filter, search (name, serial, POIID, id) and sort: the table a support engineer narrows down. */
export function selectTerminals(all: TerminalView[], f: TerminalFilter): TerminalView[] {
  const q = f.q.trim().toLowerCase();
  const rows = all.filter(
    (t) =>
      (f.status === '' || t.status === f.status) &&
      (f.locationId === '' || t.locationId === f.locationId) &&
      (q === '' || [t.name, t.serialNumber, poiid(t), t.id].some((v) => v?.toLowerCase().includes(q))),
  );
  const by: Record<string, (a: TerminalView, b: TerminalView) => number> = {
    name: (a, b) => a.name.localeCompare(b.name),
    status: (a, b) => (STATUS_ORDER[a.status] ?? 9) - (STATUS_ORDER[b.status] ?? 9),
    lastSeen: (a, b) => (b.lastSeen ?? 0) - (a.lastSeen ?? 0),
    certificate: (a, b) => Date.parse(a.certificate.notAfter) - Date.parse(b.certificate.notAfter),
  };
  return rows.sort((a, b) => by[f.sort]!(a, b) || a.id.localeCompare(b.id));
}

function queryString(f: TerminalFilter): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(f)) if (v !== '') q.set(k, v);
  const s = q.toString();
  return s === '' ? '' : `?${s}`;
}

/** The table body on its own: what the page polls to stay live (htmx swaps it in place). */
export function terminalRows(rows: TerminalView[], f: TerminalFilter, nowMs: number): SafeHtml {
  return html`<tbody id="terminal-rows" hx-get="/portal/terminals/rows${queryString(f)}" hx-trigger="every 3s" hx-swap="outerHTML">
${
  rows.length === 0
    ? html`<tr><td colspan="8" class="muted">No terminal matches.</td></tr>`
    : rows.map(
        (t) => html`<tr data-terminal-id="${t.id}">
<td><a href="/portal/terminals/${encodeURIComponent(t.id)}">${t.name}</a><br><span class="muted">${poiid(t) ?? t.serialNumber ?? t.id}</span></td>
<td>${statusBadge(t.status, (t as { statusReason?: string | null }).statusReason)}</td>
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
  rows: TerminalView[],
  f: TerminalFilter,
  locations: { id: string; name: string }[],
  nowMs: number,
): SafeHtml {
  const store = locations.find((l) => l.id === f.locationId);
  return layout(
    store ? `Terminals of ${store.name}` : 'Terminals',
    session,
    html`<h1>${store ? html`Terminals of ${store.name}` : 'Terminals'}</h1>
<form class="filters" method="get" action="/portal/terminals" role="search">
<label>Search <input type="search" name="q" value="${f.q}" placeholder="name, serial or POIID"></label>
<label>Status <select name="status">
<option value="">any</option>
${TERMINAL_STATUSES.map((s) => html`<option value="${s}"${f.status === s ? html` selected` : ''}>${statusWord(s)}</option>`)}
</select></label>
<label>Store <select name="locationId">
<option value="">any</option>
${locations.map((l) => html`<option value="${l.id}"${f.locationId === l.id ? html` selected` : ''}>${l.name}</option>`)}
</select></label>
<label>Sort by <select name="sort">
${Object.entries(SORTS).map(([k, v]) => html`<option value="${k}"${f.sort === k ? html` selected` : ''}>${v}</option>`)}
</select></label>
<button type="submit">Apply</button>
</form>
<div class="table-wrap">
<table>
<caption class="visually-hidden">Terminals, ${rows.length} shown; the table updates by itself</caption>
<thead><tr><th scope="col">Name</th><th scope="col">Status</th><th scope="col">Websocket</th><th scope="col">Last heartbeat</th>
<th scope="col">Certificate expiration</th><th scope="col">Software</th><th scope="col">Battery</th><th scope="col">Lock</th></tr></thead>
${terminalRows(rows, f, nowMs)}
</table>
</div>`,
  );
}
