import type { LocationView, OrganizationView } from '../../fleet/organization-service.js';
import { html, type SafeHtml } from '../html.js';
import { mayDo } from '../portal-roles.js';
import type { PortalSession } from '../portal-sessions.js';
import { csrfField, layout } from './layout.js';
import { templateFields } from './template-form.js';

export function organizationsPage(
  session: PortalSession,
  orgs: { data: OrganizationView[]; has_more: boolean },
  after: string,
): SafeHtml {
  const last = orgs.data.at(-1);
  return layout(
    'Organizations',
    session,
    html`<h1>Organizations</h1>
<div class="table-wrap"><table><caption class="visually-hidden">Organizations</caption>
<thead><tr><th scope="col">Organization</th><th scope="col">Slug (for escalations)</th></tr></thead>
<tbody>${orgs.data.map(
      (o) =>
        html`<tr data-organization-id="${o.id}"><td><a href="/portal/organizations/${encodeURIComponent(o.id)}">${o.name}</a></td><td><code>${o.slug}</code></td></tr>`,
    )}</tbody></table></div>
<nav aria-label="Pages">
${after ? html`<a href="/portal/organizations">First page</a>` : ''}
${orgs.has_more && last ? html` <a href="/portal/organizations?starting_after=${encodeURIComponent(last.id)}">Next →</a>` : ''}
</nav>`,
  );
}

/** One organization's stores, each with its terminal counts ("the expected count of active terminals"). */
export function storesPage(
  session: PortalSession,
  org: OrganizationView,
  stores: { data: LocationView[]; has_more: boolean },
): SafeHtml {
  return layout(
    org.name,
    session,
    html`<p class="crumbs"><a href="/portal/organizations">Organizations</a> › ${org.name}</p>
<h1>Stores of ${org.name}</h1>
<p class="muted">Organization slug <code>${org.slug}</code></p>
<div class="table-wrap"><table><caption class="visually-hidden">Stores and their terminals</caption>
<thead><tr><th scope="col">Store</th><th scope="col">Active</th><th scope="col">Online</th><th scope="col">At risk</th><th scope="col">Offline</th><th scope="col">Error</th><th scope="col">Configuration</th></tr></thead>
<tbody>${stores.data.map(
      (
        s,
      ) => html`<tr data-location-id="${s.id}"><td><a href="/portal/terminals?locationId=${encodeURIComponent(s.id)}">${s.name}</a>${s.active ? '' : html` <span class="muted">(inactive)</span>`}</td>
<td>${s.counts.active}</td><td>${s.counts.online}</td><td>${s.counts.needs_attention}</td><td>${s.counts.offline}</td><td>${s.counts.error}</td>
<td><a href="/portal/stores/${encodeURIComponent(s.id)}/config">Store config<span class="visually-hidden"> of ${s.name}</span></a></td></tr>`,
    )}</tbody></table></div>
${stores.has_more ? html`<p class="muted">More stores than shown: narrow down with the terminals search.</p>` : ''}`,
  );
}

/** The location template (tip, receipt, display, offlineMode) as fields, or as JSON; the API's messages either way. */
export function storeConfigPage(
  session: PortalSession,
  store: { id: string; name: string; organizationId: string },
  template: Record<string, Record<string, unknown>>,
  flash?: { ok: boolean; text: string },
  jsonText?: string,
): SafeHtml {
  const editable = mayDo(session.role, 'location.configure');
  const action = `/portal/stores/${encodeURIComponent(store.id)}/config`;
  return layout(
    `Config of ${store.name}`,
    session,
    html`<p class="crumbs"><a href="/portal/organizations">Organizations</a> › <a href="/portal/organizations/${encodeURIComponent(store.organizationId)}">stores</a> › ${store.name}</p>
<h1>Configuration template of ${store.name}</h1>
${flash ? html`<div class="${flash.ok ? 'notice' : 'error-box'}" role="${flash.ok ? 'status' : 'alert'}"><p>${flash.text}</p></div>` : ''}
<p>Every terminal of the store gets this template under its own overrides. An empty field is not set here: the terminal keeps the default.</p>
${editable ? '' : html`<p class="muted">Only an admin changes configuration.</p>`}
<form class="stack" method="post" action="${action}">${csrfField(session)}<input type="hidden" name="as" value="fields">
${templateFields(template, editable)}
${editable ? html`<div><button type="submit">Save and push to the store's terminals</button></div>` : ''}
</form>
<details${jsonText !== undefined ? html` open` : ''}><summary>The template as JSON</summary>
<form class="stack" method="post" action="${action}">${csrfField(session)}<input type="hidden" name="as" value="json">
<label>Template (JSON) <textarea name="template" spellcheck="false"${editable ? '' : html` readonly`}>${jsonText ?? JSON.stringify(template, null, 2)}</textarea></label>
${editable ? html`<div><button type="submit">Save JSON and push</button></div>` : ''}
</form>
</details>`,
  );
}
