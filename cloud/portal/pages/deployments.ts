import type { DeploymentTargetView, DeploymentView } from '../../deployments/deployment-service.js';
import { html, type SafeHtml } from '../html.js';
import { mayDo } from '../portal-roles.js';
import type { PortalSession } from '../portal-sessions.js';
import { ago } from './format.js';
import { csrfField, layout } from './layout.js';

/** Deployments (issue 24): the list, and one deployment's progress per group, live. */
const dpath = (id: string, rest = '') => `/portal/deployments/${encodeURIComponent(id)}${rest}`;

export function deploymentsPage(
  session: PortalSession,
  list: { data: DeploymentView[]; has_more: boolean },
  after: string,
  nowMs: number,
): SafeHtml {
  const last = list.data.at(-1);
  return layout(
    'Deployments',
    session,
    html`<h1>Deployments</h1>
<p class="muted">Staged rollouts of a release (created with <code>POST /v1/deployments</code>).</p>
${
  list.data.length === 0
    ? html`<p>No deployment yet.</p>`
    : html`<div class="table-wrap"><table><caption class="visually-hidden">Deployments, newest first</caption>
<thead><tr><th scope="col">Deployment</th><th scope="col">Release</th><th scope="col">State</th><th scope="col">Done</th><th scope="col">Failed</th><th scope="col">Created</th></tr></thead>
<tbody>${list.data.map(
        (
          d,
        ) => html`<tr data-deployment-id="${d.id}"><td><a href="${dpath(d.id)}">${d.name}</a></td><td>${d.release}</td>
<td class="deployment-${d.state}">${d.state}</td><td>${String(d.totals.completed)} of ${String(sizeOf(d))}</td><td>${String(d.totals.failed)}</td><td>${ago(d.createdAt, nowMs)}</td></tr>`,
      )}</tbody></table></div>`
}
<nav aria-label="Pages">
${after ? html`<a href="/portal/deployments">First page</a>` : ''}
${list.has_more && last ? html` <a href="/portal/deployments?starting_after=${encodeURIComponent(last.id)}">Next →</a>` : ''}
</nav>`,
  );
}

const sizeOf = (d: DeploymentView) => d.groups.reduce((n, g) => n + g.size, 0);

/** The part that changes: state and the groups' progress (polled every 3 s). */
export function deploymentLive(d: DeploymentView): SafeHtml {
  return html`<section id="deployment-live" aria-labelledby="progress-h" hx-get="${dpath(d.id, '/live')}" hx-trigger="every 3s" hx-swap="outerHTML">
<h2 id="progress-h">Progress</h2>
<p>State: <strong class="deployment-${d.state}">${d.state}</strong>${d.reason ? html` — ${d.reason}` : ''}</p>
<div class="table-wrap"><table><caption class="visually-hidden">Terminals per group and state</caption>
<thead><tr><th scope="col">Group</th><th scope="col">Progress</th><th scope="col">Queued</th><th scope="col">Updating</th><th scope="col">Completed</th><th scope="col">Failed</th><th scope="col">Skipped</th></tr></thead>
<tbody>${d.groups.map(
    (
      g,
    ) => html`<tr data-group="${String(g.index + 1)}"><th scope="row">${String(g.index + 1)}${g.started ? '' : html` <span class="muted">(not started)</span>`}</th>
<td><progress max="${String(g.size)}" value="${String(g.completed + g.failed + g.skipped)}" aria-label="Group ${String(g.index + 1)}: ${String(g.completed + g.failed + g.skipped)} of ${String(g.size)} finished"></progress></td>
<td>${String(g.queued)}</td><td>${String(g.processing)}</td><td>${String(g.completed)}</td><td>${String(g.failed)}</td><td>${String(g.skipped)}</td></tr>`,
  )}</tbody></table></div>
</section>`;
}

export function deploymentPage(
  session: PortalSession,
  d: DeploymentView,
  failed: DeploymentTargetView[],
  nowMs: number,
  flash?: { ok: boolean; text: string },
): SafeHtml {
  const can = mayDo(session.role, 'deployment.manage');
  const verb = (name: 'pause' | 'resume', label: string) =>
    html`<form class="inline" method="post" action="${dpath(d.id, `/${name}`)}">${csrfField(session)}<button type="submit">${label}</button></form>`;
  return layout(
    d.name,
    session,
    html`<p class="crumbs"><a href="/portal/deployments">Deployments</a> › ${d.name}</p>
<h1>${d.name}</h1>
${flash ? html`<div class="${flash.ok ? 'notice' : 'error-box'}" role="${flash.ok ? 'status' : 'alert'}"><p>${flash.text}</p></div>` : ''}
<dl class="facts">
<dt>Release</dt><dd>${d.release}</dd>
<dt>Terminals</dt><dd>${String(sizeOf(d))} in ${String(d.groups.length)} groups</dd>
<dt>Next group when</dt><dd>${String(d.advanceWhen.successPercent)} % of the group before completed</dd>
<dt>Stops when</dt><dd>${
      [
        d.stopWhen.failures !== undefined ? `${d.stopWhen.failures} failures` : '',
        d.stopWhen.failurePercent !== undefined
          ? `${d.stopWhen.failurePercent} % of the finished failed`
          : '',
      ]
        .filter(Boolean)
        .join(', or ') || 'a group finishes below its share'
    }</dd>
<dt>Rate</dt><dd>at most ${String(d.maxPerMinute)} updates a minute${d.now ? ', at once' : ', each in its terminal’s maintenance window'}</dd>
<dt>Created</dt><dd>${ago(d.createdAt, nowMs)}</dd>
</dl>
${deploymentLive(d)}
${
  can && (d.state === 'running' || d.state === 'paused' || d.state === 'scheduled')
    ? html`<section aria-labelledby="do-h"><h2 id="do-h">Do</h2>
${d.state === 'running' ? verb('pause', 'Pause') : ''}${d.state === 'paused' ? verb('resume', 'Resume') : ''}
<a href="${dpath(d.id, '/cancel')}">Cancel the deployment…</a></section>`
    : ''
}
${
  failed.length === 0
    ? ''
    : html`<section aria-labelledby="failed-h"><h2 id="failed-h">Failed terminals</h2>
<ul>${failed.map((t) => html`<li><a href="/portal/terminals/${encodeURIComponent(t.terminalId)}">${t.terminalId}</a>: ${t.reason ?? 'failed'}</li>`)}</ul></section>`
}`,
  );
}

export function cancelDeploymentPage(session: PortalSession, d: DeploymentView): SafeHtml {
  return layout(
    `Cancel ${d.name}`,
    session,
    html`<p class="crumbs"><a href="${dpath(d.id)}">${d.name}</a></p>
<h1>Cancel ${d.name}?</h1>
<p>The terminals not asked yet are skipped; those updating now finish. This cannot be undone.</p>
<form class="stack" method="post" action="${dpath(d.id, '/cancel')}">${csrfField(session)}
<div><button type="submit" class="danger">Cancel the deployment</button> <a href="${dpath(d.id)}">Keep it</a></div>
</form>`,
  );
}
