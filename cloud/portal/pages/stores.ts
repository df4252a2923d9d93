import type { TerminalView } from '../../fleet/fleet-service.js';
import { html, type SafeHtml } from '../html.js';
import { mayDo } from '../portal-roles.js';
import type { PortalSession } from '../portal-sessions.js';
import { csrfField, layout } from './layout.js';

export interface StoreRow {
  id: string;
  name: string;
  counts: { active: number; online: number; needs_attention: number; offline: number; error: number };
}

export function countsOf(terminals: TerminalView[]): StoreRow['counts'] {
  const c = { active: 0, online: 0, needs_attention: 0, offline: 0, error: 0 };
  for (const t of terminals) {
    if (t.status === 'deactivated') continue;
    c.active++;
    if (t.status in c) c[t.status as keyof typeof c]++;
  }
  return c;
}

export function storesPage(session: PortalSession, stores: StoreRow[]): SafeHtml {
  return layout(
    'Stores',
    session,
    html`<h1>Stores</h1>
<div class="table-wrap"><table><caption class="visually-hidden">Stores and their terminals</caption>
<thead><tr><th scope="col">Store</th><th scope="col">Active</th><th scope="col">Online</th><th scope="col">At risk</th><th scope="col">Offline</th><th scope="col">Error</th><th scope="col">Configuration</th></tr></thead>
<tbody>${stores.map(
      (
        s,
      ) => html`<tr data-location-id="${s.id}"><td><a href="/portal/terminals?locationId=${encodeURIComponent(s.id)}">${s.name}</a></td>
<td>${s.counts.active}</td><td>${s.counts.online}</td><td>${s.counts.needs_attention}</td><td>${s.counts.offline}</td><td>${s.counts.error}</td>
<td><a href="/portal/stores/${encodeURIComponent(s.id)}/config">Store config<span class="visually-hidden"> of ${s.name}</span></a></td></tr>`,
    )}</tbody></table></div>`,
  );
}

/** The location template (tip, receipt, display, offlineMode) as the API takes it, with the API's messages. */
export function storeConfigPage(
  session: PortalSession,
  store: { id: string; name: string },
  templateText: string,
  flash?: { ok: boolean; text: string },
): SafeHtml {
  const editable = mayDo(session.role, 'location.configure');
  return layout(
    `Config of ${store.name}`,
    session,
    html`<p class="crumbs"><a href="/portal/stores">Stores</a> › ${store.name}</p>
<h1>Configuration template of ${store.name}</h1>
${flash ? html`<div class="${flash.ok ? 'notice' : 'error-box'}" role="${flash.ok ? 'status' : 'alert'}"><p>${flash.text}</p></div>` : ''}
<p>Every terminal of the store gets this template under its own overrides (tip, receipt, display, offlineMode).</p>
<form class="stack" method="post" action="/portal/stores/${encodeURIComponent(store.id)}/config">${csrfField(session)}
<label>Template (JSON) <textarea name="template" spellcheck="false"${editable ? '' : html` readonly`}>${templateText}</textarea></label>
${editable ? html`<div><button type="submit">Save and push to the store's terminals</button></div>` : html`<p class="muted">Only an admin changes configuration.</p>`}
</form>`,
  );
}
