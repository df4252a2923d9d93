import { html, type SafeHtml } from '../html.js';
import { layout } from './layout.js';

export function signInPage(csrf: string, next: string, error?: string, name = ''): SafeHtml {
  return layout(
    'Sign in',
    undefined,
    html`<h1>Sign in</h1>
${error ? html`<div class="error-box" role="alert"><p>${error}</p></div>` : ''}
<form class="stack" method="post" action="/portal/sign-in">
<input type="hidden" name="_csrf" value="${csrf}">
<input type="hidden" name="next" value="${next}">
<label>Operator name <input name="name" autocomplete="username" required value="${name}" ${error ? '' : html`autofocus`}></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required ${error ? html`autofocus` : ''}></label>
<div><button type="submit">Sign in</button></div>
</form>
<p class="muted">Accounts are made on the cloud with <code>posagent-cloud user add NAME --role admin|support</code>.</p>`,
  );
}
