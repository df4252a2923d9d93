import { html, type SafeHtml } from '../html.js';
import type { PortalSession } from '../portal-sessions.js';

/** Every signed-in page: the header with its navigation, the operator and sign-out, then `main`. */
export function layout(title: string, session: PortalSession | undefined, body: SafeHtml): SafeHtml {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="htmx-config" content='{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false}'>
<title>${title} · posagent support</title>
<link rel="stylesheet" href="/portal/assets/portal.css">
<script src="/portal/assets/htmx.min.js" defer></script>
<script src="/portal/assets/portal.js" defer></script>
</head>
<body${session ? html` hx-headers='${JSON.stringify({ 'X-CSRF-Token': session.csrfToken })}'` : ''}>
<a class="skip" href="#main">Skip to content</a>
<header>
<nav aria-label="Main">
<a class="brand" href="/portal/">posagent support</a>
${
  session
    ? html`<a href="/portal/organizations">Organizations</a>
<a href="/portal/terminals">Terminals</a>
<a href="/portal/deployments">Deployments</a>
<a href="/portal/register">Register terminal</a>
${session.role === 'admin' ? html`<a href="/portal/operators">Operators</a>` : ''}
<span class="who">${session.operator} (${session.role})</span>
<form method="post" action="/portal/sign-out">${csrfField(session)}<button class="secondary" type="submit">Sign out</button></form>`
    : ''
}
</nav>
</header>
<main id="main">
${body}
</main>
</body>
</html>
`;
}

/** The hidden field every form carries. */
export function csrfField(session: PortalSession): SafeHtml {
  return html`<input type="hidden" name="_csrf" value="${session.csrfToken}">`;
}

/** A message page (not found, refused, an error): the code and the words of the refusal. */
export function messagePage(
  title: string,
  session: PortalSession | undefined,
  code: string,
  message: string,
): SafeHtml {
  return layout(
    title,
    session,
    html`<h1>${title}</h1>
<div class="error-box" role="alert"><p><strong>${code}</strong>: ${message}</p></div>
<p><a href="/portal/">Back to the portal</a></p>`,
  );
}
