import type { AuditRow } from '../../store/store-types.js';
import { html, type SafeHtml } from '../html.js';
import type { OperatorView } from '../operator-accounts.js';
import type { PortalSession } from '../portal-sessions.js';
import { ago } from './format.js';
import { layout } from './layout.js';

/** Admin only: who may sign in, as what, and the latest of what was done in the portal. */
export function operatorsPage(
  session: PortalSession,
  operators: OperatorView[],
  audit: AuditRow[],
  nowMs: number,
): SafeHtml {
  return layout(
    'Operators',
    session,
    html`<h1>Operators</h1>
<p>Accounts are added, changed and removed on the cloud: <code>posagent-cloud user add|passwd|role|remove NAME --data-dir DIR</code>.</p>
<div class="table-wrap"><table><caption class="visually-hidden">Operator accounts</caption>
<thead><tr><th scope="col">Name</th><th scope="col">Role</th><th scope="col">Added</th></tr></thead>
<tbody>${operators.map((o) => html`<tr><td>${o.name}</td><td>${o.role}</td><td>${ago(o.createdAt, nowMs)}</td></tr>`)}</tbody></table></div>
<h2>Latest portal actions</h2>
<div class="table-wrap"><table><caption class="visually-hidden">The audit log, newest first</caption>
<thead><tr><th scope="col">When</th><th scope="col">Who</th><th scope="col">What</th><th scope="col">On</th><th scope="col">Outcome</th></tr></thead>
<tbody>${audit.map(
      (
        a,
      ) => html`<tr><td>${ago(a.at, nowMs)}</td><td>${a.operator}</td><td>${a.action}${a.detail ? html` <span class="muted">${a.detail}</span>` : ''}</td>
<td>${a.target?.startsWith('term_') ? html`<a href="/portal/terminals/${encodeURIComponent(a.target)}">${a.target}</a>` : (a.target ?? '')}</td><td>${a.outcome}</td></tr>`,
    )}</tbody></table></div>`,
  );
}
