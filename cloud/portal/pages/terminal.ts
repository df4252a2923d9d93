import type { ActionView } from '../../actions/action-service.js';
import type { TerminalView } from '../../fleet/fleet-service.js';
import type { AuditRow } from '../../store/store-types.js';
import { html, type SafeHtml } from '../html.js';
import { mayDo } from '../portal-roles.js';
import type { PortalSession } from '../portal-sessions.js';
import { ago, certificateExpiry, connectedMark, poiid, statusBadge } from './format.js';
import { csrfField, layout } from './layout.js';

export interface TerminalPageData {
  terminal: TerminalView;
  locationName: string | null;
  config: {
    version: number | null;
    desired?: unknown;
    appliedVersion: number | null;
    status: string | null;
    error?: unknown;
  };
  actions: ActionView[];
  audit: AuditRow[];
  diagnostics: Record<string, unknown> | null;
  /** A one-off message after a form post (what was done, or why not). */
  flash?: { ok: boolean; text: string };
}

const path = (t: TerminalView, rest = '') => `/portal/terminals/${encodeURIComponent(t.id)}${rest}`;

function health(t: TerminalView): Record<string, unknown> {
  return t.health !== null && typeof t.health === 'object' ? (t.health as Record<string, unknown>) : {};
}

/** The part of the page that changes by itself (status, heartbeat, actions): polled every 3 s. */
export function terminalLive(d: TerminalPageData, nowMs: number): SafeHtml {
  const t = d.terminal;
  const h = health(t);
  return html`<section id="terminal-live" aria-labelledby="status-h" hx-get="${path(t, '/live')}" hx-trigger="every 3s" hx-swap="outerHTML">
<h2 id="status-h">Status</h2>
<dl class="facts">
<dt>Status</dt><dd>${statusBadge(t.status, (t as { statusReason?: string | null }).statusReason)}</dd>
<dt>Websocket</dt><dd>${connectedMark(t.connected)} ${t.connected ? 'connected' : 'not connected'}</dd>
<dt>Last heartbeat</dt><dd>${ago(t.lastSeen, nowMs)} <span class="muted">(now ${new Date(nowMs).toISOString().replace(/\.\d+Z$/, 'Z')})</span></dd>
<dt>Lock</dt><dd>${t.locked ? html`<span class="warn">Locked</span>` : 'Unlocked'}</dd>
<dt>Queue</dt><dd>${h.queueDepth === undefined ? '—' : String(h.queueDepth)} waiting${h.queueOldestAt ? html`, oldest ${String(h.queueOldestAt)}` : ''}</dd>
<dt>Battery</dt><dd>${t.batteryLevel === null ? '—' : `${t.batteryLevel} %`}</dd>
</dl>
<h2>Actions</h2>
${
  d.actions.length === 0
    ? html`<p class="muted">No action sent to this terminal yet.</p>`
    : html`<div class="table-wrap"><table><caption class="visually-hidden">Actions sent to this terminal</caption>
<thead><tr><th scope="col">Action</th><th scope="col">Status</th><th scope="col">Step</th><th scope="col">Asked</th><th scope="col">Updated</th></tr></thead>
<tbody>${d.actions
        .slice()
        .reverse()
        .map(
          (
            a,
          ) => html`<tr data-action-id="${a.id}"><td>${a.type}</td><td class="action-${a.status}">${a.status}${a.reason ? html` <span class="muted">(${a.reason})</span>` : ''}</td>
<td>${a.step ?? ''}${a.percent !== null ? ` ${a.percent} %` : ''}</td><td>${a.createdAt}</td><td>${a.updatedAt}</td></tr>`,
        )}</tbody></table></div>`
}
</section>`;
}

export function terminalPage(session: PortalSession, d: TerminalPageData, nowMs: number): SafeHtml {
  const t = d.terminal;
  const can = (a: Parameters<typeof mayDo>[1]) => mayDo(session.role, a) && t.status !== 'deactivated';
  const button = (action: string, label: string, cls = '') =>
    html`<form class="inline" method="post" action="${path(t, '/actions')}">${csrfField(session)}<input type="hidden" name="type" value="${action}"><button type="submit"${cls ? html` class="${cls}"` : ''}>${label}</button></form>`;
  return layout(
    t.name,
    session,
    html`<p class="crumbs"><a href="/portal/terminals">Terminals</a>${d.locationName ? html` › <a href="/portal/terminals?locationId=${encodeURIComponent(t.locationId)}">${d.locationName}</a>` : ''}</p>
<h1>${t.name}</h1>
${d.flash ? html`<div class="${d.flash.ok ? 'notice' : 'error-box'}" role="${d.flash.ok ? 'status' : 'alert'}"><p>${d.flash.text}</p></div>` : ''}
<section aria-labelledby="ids-h">
<h2 id="ids-h">Identifiers</h2>
<dl class="facts">
<dt>Terminal id</dt><dd><code>${t.id}</code></dd>
<dt>Serial number</dt><dd>${t.serialNumber ?? '—'}</dd>
<dt>Model</dt><dd>${t.model ?? '—'}</dd>
<dt>POIID</dt><dd>${poiid(t) ?? '—'}</dd>
<dt>Store</dt><dd>${d.locationName ?? t.locationId}</dd>
<dt>Software</dt><dd>${t.softwareVersion ?? '—'}</dd>
<dt>Certificate expiration</dt><dd>${certificateExpiry(t.certificate.notAfter, nowMs)}</dd>
<dt>Enrolled</dt><dd>${ago(t.createdAt, nowMs)}</dd>
</dl>
</section>
${terminalLive(d, nowMs)}
<section aria-labelledby="do-h">
<h2 id="do-h">Do</h2>
${
  t.status === 'deactivated'
    ? html`<p class="muted">This terminal is deactivated${t.deactivationReason ? html` (${t.deactivationReason})` : ''}.</p>`
    : html`<div>
${can('terminal.reboot') ? button('reboot', 'Reboot') : ''}
${can('terminal.lock') && !t.locked ? button('lock', 'Lock') : ''}
${can('terminal.unlock') && t.locked ? button('unlock', 'Unlock') : ''}
${can('terminal.diagnostics') ? html`<form class="inline" method="post" action="${path(t, '/diagnostics')}">${csrfField(session)}<button type="submit" class="secondary">Run diagnostics</button></form>` : ''}
</div>
${can('terminal.rename') ? html`<form class="inline" method="post" action="${path(t, '/rename')}">${csrfField(session)}<label>Name <input name="name" value="${t.name}" required maxlength="100"></label><button type="submit" class="secondary">Rename</button></form>` : ''}
<div>
${can('terminal.replace') ? html`<a href="${path(t, '/replace')}">Replace device…</a> · ` : ''}
${can('terminal.deactivate') ? html`<a href="${path(t, '/deactivate')}">Decommission…</a>` : ''}
</div>`
}
</section>
<section aria-labelledby="config-h">
<h2 id="config-h">Configuration</h2>
<dl class="facts">
<dt>Version</dt><dd>${d.config.version ?? '—'}</dd>
<dt>Applied version</dt><dd>${d.config.appliedVersion ?? '—'}</dd>
<dt>Status</dt><dd>${d.config.status ?? '—'}</dd>
</dl>
${d.config.error ? html`<div class="error-box" role="alert"><p>${typeof d.config.error === 'string' ? d.config.error : JSON.stringify(d.config.error)}</p></div>` : ''}
${d.config.desired !== undefined ? html`<details><summary>Effective configuration</summary><pre>${JSON.stringify(d.config.desired, null, 2)}</pre></details>` : ''}
</section>
<section aria-labelledby="diag-h">
<h2 id="diag-h">Diagnostics</h2>
${d.diagnostics ? html`<p>Last report received ${String(d.diagnostics.receivedAt)}.</p><details><summary>Report</summary><pre>${JSON.stringify(d.diagnostics, null, 2)}</pre></details>` : html`<p class="muted">No diagnostics report yet.</p>`}
</section>
<section aria-labelledby="audit-h">
<h2 id="audit-h">Audit</h2>
${
  d.audit.length === 0
    ? html`<p class="muted">No operator has acted on this terminal in the portal.</p>`
    : html`<div class="table-wrap"><table><caption class="visually-hidden">Operator actions on this terminal</caption>
<thead><tr><th scope="col">When</th><th scope="col">Who</th><th scope="col">What</th><th scope="col">Outcome</th></tr></thead>
<tbody>${d.audit.map((a) => html`<tr><td>${ago(a.at, nowMs)}</td><td>${a.operator}</td><td>${a.action}${a.detail ? html` <span class="muted">${a.detail}</span>` : ''}</td><td>${a.outcome}</td></tr>`)}</tbody></table></div>`
}
</section>`,
  );
}

/** "Are you sure?" for what cannot be undone: a form that posts, and a way back. */
export function confirmPage(
  session: PortalSession,
  t: TerminalView,
  what: { title: string; explain: string; action: string; button: string; reasonField?: boolean },
): SafeHtml {
  return layout(
    what.title,
    session,
    html`<p class="crumbs"><a href="${path(t)}">${t.name}</a></p>
<h1>${what.title}</h1>
<p>${what.explain}</p>
<form class="stack" method="post" action="${path(t, what.action)}">${csrfField(session)}
${what.reasonField ? html`<label>Reason <input name="reason" maxlength="200" placeholder="e.g. device retired"></label>` : ''}
<div><button type="submit" class="danger">${what.button}</button> <a href="${path(t)}">Cancel</a></div>
</form>`,
  );
}
