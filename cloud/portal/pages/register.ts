import { html, type SafeHtml } from '../html.js';
import type { PortalSession } from '../portal-sessions.js';
import { csrfField, layout } from './layout.js';

export function registerPage(
  session: PortalSession,
  locations: { id: string; name: string }[],
  chosen: string,
  error?: string,
  name = '',
): SafeHtml {
  return layout(
    'Register terminal',
    session,
    html`<h1>Register terminal</h1>
${error ? html`<div class="error-box" role="alert"><p>${error}</p></div>` : ''}
${
  locations.length === 0
    ? html`<p>There is no store yet: an admin makes one first.</p>`
    : html`<form class="stack" method="post" action="/portal/register">${csrfField(session)}
<label>Friendly name <input name="terminalName" required maxlength="100" value="${name}" placeholder="e.g. Front counter 1"></label>
<label>Store <select name="locationId" required>
${locations.map((l) => html`<option value="${l.id}"${l.id === chosen ? html` selected` : ''}>${l.name}</option>`)}
</select></label>
<label>Valid for <select name="ttlSeconds">
<option value="3600">1 hour</option><option value="86400" selected>1 day</option><option value="604800">7 days</option>
</select></label>
<div><button type="submit">Create enrollment code</button></div>
</form>`
}`,
  );
}

/** The code to type on the terminal, and its QR to scan (`posagent enroll --qr`). */
export function codePage(
  session: PortalSession,
  c: { code: string; expiresAt: number | string; terminalName: string; locationName: string },
  title = 'Enrollment code',
): SafeHtml {
  const expires = typeof c.expiresAt === 'number' ? new Date(c.expiresAt * 1000).toISOString() : c.expiresAt;
  return layout(
    title,
    session,
    html`<h1>${title}</h1>
<p>For <strong>${c.terminalName}</strong> at <strong>${c.locationName}</strong>. On the terminal: <code>posagent enroll --code ${c.code}</code>, or scan the QR code.</p>
<p class="code" id="enrollment-code">${c.code}</p>
<p>Valid until <time datetime="${expires}">${expires.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}</time>; it works once.</p>
<img src="/portal/enrollment-codes/${encodeURIComponent(c.code)}/qr.png" width="246" height="246" alt="QR code of enrollment code ${c.code}">
<p><a href="/portal/terminals">Back to the terminals</a></p>`,
  );
}
