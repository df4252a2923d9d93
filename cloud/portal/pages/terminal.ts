import type { ActionView } from '../../actions/action-service.js';
import type { TerminalEventView, TerminalView } from '../../fleet/fleet-service.js';
import type { AuditRow } from '../../store/store-types.js';
import { html, type SafeHtml } from '../html.js';
import { mayDo } from '../portal-roles.js';
import type { PortalSession } from '../portal-sessions.js';
import { ago, certificateExpiry, connectedMark, poiid, statusBadge, statusWord, unixOf } from './format.js';
import { csrfField, layout } from './layout.js';

export interface TerminalPageData {
  terminal: TerminalView;
  locationName: string | null;
  config: {
    version: number | null;
    desired?: unknown;
    overrides?: unknown;
    appliedVersion: number | null;
    status: string | null;
    error?: unknown;
  };
  actions: ActionView[];
  audit: AuditRow[];
  diagnostics: Record<string, unknown> | null;
  events: TerminalEventView[];
  escalation: Record<string, unknown>;
  /** The answer of "Check connection", when it was just asked. */
  check?: ConnectionCheck;
  /** A one-off message after a form post (what was done, or why not). */
  flash?: { ok: boolean; text: string };
}

export interface ConnectionCheck {
  connected: boolean;
  rttMs?: number;
  reason?: string;
  checkedAt: number;
}

const isoOf = (t: number | string | null | undefined) => {
  const u = unixOf(t);
  return u === null ? '—' : new Date(u * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
};

/** "Check connection"'s answer: asked once, never refreshed by itself (as the Adyen page says). */
export function checkResult(c: ConnectionCheck | undefined): SafeHtml {
  return html`<p id="check-result" role="status" aria-live="polite">${
    c
      ? c.connected
        ? html`<span class="ok">✅ Connected</span> — round trip ${c.rttMs ?? '?'} ms, checked ${isoOf(c.checkedAt)}`
        : html`<span class="bad">❌ Disconnected</span> — ${c.reason ?? 'no answer'}, checked ${isoOf(c.checkedAt)}`
      : ''
  }</p>`;
}

/** The PeakPOS guide's "Include:" list as text to paste into an escalation. */
export function escalationText(e: Record<string, unknown>): string {
  const org = e.organization as { slug: string; name: string } | null;
  const store = e.store as { name: string } | null;
  const t = e.terminal as Record<string, string | null>;
  const cert = e.certificate as { notAfter: string | number; daysLeft: number; expired: boolean };
  const events = (e.recentEvents as TerminalEventView[] | undefined) ?? [];
  return [
    `Organization: ${org ? `${org.slug} (${org.name})` : '—'}`,
    `Store: ${store?.name ?? '—'}`,
    `Terminal: ${t.name} (${t.id})`,
    `Serial number: ${t.serialNumber ?? '—'} · Model: ${t.model ?? '—'} · POIID: ${t.poiid ?? '—'}`,
    `Software: ${t.softwareVersion ?? '—'}`,
    `Status: ${e.status}${e.statusReason ? ` (${e.statusReason})` : ''} since ${isoOf(e.statusSince as number | null)}`,
    `Websocket: ${e.connected ? 'connected' : 'not connected'}`,
    `Last heartbeat: ${isoOf((e.lastHeartbeat ?? e.lastSeen) as number | null)}`,
    `Certificate expires: ${isoOf(cert.notAfter)} (${cert.expired ? 'expired' : `${cert.daysLeft} days left`})`,
    `Generated: ${isoOf(e.generatedAt as number)}`,
    'Recent status changes:',
    ...(events.length === 0
      ? ['  none']
      : events.map(
          (v) =>
            `  ${isoOf(v.at)} ${v.previousStatus ?? '—'} → ${v.status}${v.reason ? ` (${v.reason})` : ''}`,
        )),
  ].join('\n');
}

const path = (t: TerminalView, rest = '') => `/portal/terminals/${encodeURIComponent(t.id)}${rest}`;

function health(t: TerminalView): Record<string, unknown> {
  return t.health !== null && typeof t.health === 'object' ? (t.health as Record<string, unknown>) : {};
}

/** The part of the page that changes by itself (status, heartbeat, actions): polled every 3 s. */
export function terminalLive(d: Pick<TerminalPageData, 'terminal' | 'actions'>, nowMs: number): SafeHtml {
  const t = d.terminal;
  const h = health(t);
  return html`<section id="terminal-live" aria-labelledby="status-h" hx-get="${path(t, '/live')}" hx-trigger="every 3s" hx-swap="outerHTML">
<h2 id="status-h">Status</h2>
<dl class="facts">
<dt>Status</dt><dd>${statusBadge(t.status, t.statusReason)}${t.statusSince ? html` since ${ago(t.statusSince, nowMs)}` : ''}</dd>
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
        .slice(-20)
        .reverse()
        .map(
          (
            a,
          ) => html`<tr data-action-id="${a.id}"><td>${a.type}${a.logs ? html` <a href="/portal/terminals/${encodeURIComponent(a.terminalId)}/actions/${encodeURIComponent(a.id)}/logs">logs</a>` : ''}</td><td class="action-${a.status}">${a.status}${a.reason ? html` <span class="muted">(${a.reason})</span>` : ''}</td>
<td>${a.step ?? ''}${a.percent !== null ? ` ${a.percent} %` : ''}</td><td>${ago(a.createdAt, nowMs)}</td><td>${ago(a.updatedAt, nowMs)}</td></tr>`,
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
${can('terminal.collect_logs') ? button('collect_logs', 'Collect logs (last hour)', 'secondary') : ''}
${can('terminal.lock') && !t.locked ? button('lock', 'Lock') : ''}
${can('terminal.unlock') && t.locked ? button('unlock', 'Unlock') : ''}
${can('terminal.diagnostics') ? html`<form class="inline" method="post" action="${path(t, '/diagnostics')}">${csrfField(session)}<button type="submit" class="secondary">Run diagnostics</button></form>` : ''}
${can('terminal.rotate_certificate') ? html`<form class="inline" method="post" action="${path(t, '/rotate-certificate')}">${csrfField(session)}<button type="submit" class="secondary">Rotate certificate</button></form>` : ''}
</div>
${can('terminal.check_connection') ? html`<form class="inline" method="post" action="${path(t, '/check-connection')}" hx-post="${path(t, '/check-connection')}" hx-target="#check-result" hx-swap="outerHTML">${csrfField(session)}<button type="submit">Check connection</button></form>` : ''}
${checkResult(d.check)}
${can('terminal.rename') ? html`<form class="inline" method="post" action="${path(t, '/rename')}">${csrfField(session)}<label>Name <input name="name" value="${t.name}" required maxlength="100"></label><button type="submit" class="secondary">Rename</button></form>` : ''}
<div>
${can('terminal.reprovision') ? html`<a href="${path(t, '/reprovision')}">Reprovision…</a> · ` : ''}
${can('terminal.replace') ? html`<a href="${path(t, '/replace')}">Replace device…</a> · ` : ''}
${can('terminal.revoke_certificate') ? html`<a href="${path(t, '/revoke-certificate')}">Revoke certificate…</a> · ` : ''}
${can('terminal.deactivate') ? html`<a href="${path(t, '/deactivate')}">Decommission…</a>` : ''}
</div>`
}
</section>
<section aria-labelledby="history-h">
<h2 id="history-h">Status history</h2>
${
  d.events.length === 0
    ? html`<p class="muted">No status change recorded yet.</p>`
    : html`<div class="table-wrap"><table><caption class="visually-hidden">Status changes, newest first</caption>
<thead><tr><th scope="col">When</th><th scope="col">From</th><th scope="col">To</th><th scope="col">Reason</th></tr></thead>
<tbody>${d.events.map((e) => html`<tr><td>${ago(e.at, nowMs)}</td><td>${e.previousStatus ? statusWord(e.previousStatus) : '—'}</td><td>${statusBadge(e.status)}</td><td>${e.reason ?? ''}</td></tr>`)}</tbody></table></div>`
}
</section>
<section aria-labelledby="escalation-h">
<h2 id="escalation-h">Escalation</h2>
<p>What an escalation to the next level includes, ready to paste.</p>
<pre id="escalation-text">${escalationText(d.escalation)}</pre>
<button type="button" class="secondary" data-copy="escalation-text">Copy escalation</button>
</section>
<section aria-labelledby="config-h">
<h2 id="config-h">Configuration</h2>
<dl class="facts">
<dt>Version</dt><dd>${d.config.version ?? '—'}</dd>
<dt>Applied version</dt><dd>${d.config.appliedVersion ?? '—'}</dd>
<dt>Status</dt><dd>${d.config.status ?? '—'}</dd>
<dt>Overrides of this terminal</dt><dd>${d.config.overrides && Object.keys(d.config.overrides as object).length > 0 ? html`<code>${JSON.stringify(d.config.overrides)}</code>` : 'none (the store template applies)'}</dd>
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
