import { html, type SafeHtml } from '../html.js';

/**
 * The store's configuration template as form fields: tip, receipt, display, offlineMode. A field
 * left empty is not in the template (the terminal inherits the cloud's default); what the fields
 * do not cover (the agent section) is kept as it was. Numbers that are not numbers are passed on
 * as typed, so the API's own validator says what is wrong with them.
 */
type Layer = Record<string, Record<string, unknown>>;

const list = (v: string) =>
  v
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '');
const number = (v: string): unknown => (/^-?\d+$/.test(v.trim()) ? Number(v.trim()) : v.trim());
const choice = (v: string | null): boolean | undefined =>
  v === 'yes' ? true : v === 'no' ? false : undefined;

export function templateFromForm(form: URLSearchParams, previous: Layer): Layer {
  const out: Layer = {};
  for (const [k, v] of Object.entries(previous))
    if (!['tip', 'receipt', 'display', 'offlineMode'].includes(k)) out[k] = v;
  const set = (section: string, key: string, value: unknown) => {
    if (value === undefined) return;
    out[section] ??= {};
    out[section]![key] = value;
  };
  const text = (name: string) => (form.get(name) ?? '').trim();
  if (text('tip.mode')) set('tip', 'mode', text('tip.mode'));
  if (text('tip.suggestions')) set('tip', 'suggestions', list(text('tip.suggestions')).map(number));
  if (text('receipt.channels')) set('receipt', 'channels', list(text('receipt.channels')));
  set('receipt', 'requireConsent', choice(form.get('receipt.requireConsent')));
  if (text('display.idleMessage')) set('display', 'idleMessage', form.get('display.idleMessage'));
  set('offlineMode', 'enabled', choice(form.get('offlineMode.enabled')));
  for (const k of ['maxAmount', 'maxQueue', 'maxAgeHours'])
    if (text(`offlineMode.${k}`)) set('offlineMode', k, number(text(`offlineMode.${k}`)));
  if (text('offlineMode.maxTotal'))
    set(
      'offlineMode',
      'maxTotal',
      Object.fromEntries(
        list(text('offlineMode.maxTotal')).map((pair) => {
          const [currency, amount] = pair.split('=').map((x) => x.trim());
          return [currency ?? '', number(amount ?? '')];
        }),
      ),
    );
  return out;
}

function value(t: Layer, section: string, key: string): string {
  const v = t[section]?.[key];
  if (v === undefined || v === null) return '';
  if (Array.isArray(v)) return v.join(', ');
  if (typeof v === 'object')
    return Object.entries(v as Record<string, unknown>)
      .map(([c, a]) => `${c}=${a}`)
      .join(', ');
  return String(v);
}

function yesNo(name: string, current: unknown, disabled: boolean): SafeHtml {
  const now = current === true ? 'yes' : current === false ? 'no' : '';
  return html`<select name="${name}"${disabled ? html` disabled` : ''}>
<option value=""${now === '' ? html` selected` : ''}>inherit</option>
<option value="yes"${now === 'yes' ? html` selected` : ''}>yes</option>
<option value="no"${now === 'no' ? html` selected` : ''}>no</option>
</select>`;
}

export function templateFields(t: Layer, editable: boolean): SafeHtml {
  const ro = editable ? '' : html` readonly`;
  const input = (name: string, section: string, key: string, hint: string) =>
    html`<input name="${name}" value="${value(t, section, key)}" placeholder="${hint}"${ro}>`;
  const mode = value(t, 'tip', 'mode');
  return html`<fieldset><legend>Tip</legend>
<label>Mode <select name="tip.mode"${editable ? '' : html` disabled`}>
<option value=""${mode === '' ? html` selected` : ''}>inherit</option>
<option value="percentage"${mode === 'percentage' ? html` selected` : ''}>percentage</option>
<option value="fixed"${mode === 'fixed' ? html` selected` : ''}>fixed</option>
</select></label>
<label>Suggestions (up to 4) ${input('tip.suggestions', 'tip', 'suggestions', 'e.g. 10, 15, 20')}</label>
</fieldset>
<fieldset><legend>Receipt</legend>
<label>Channels ${input('receipt.channels', 'receipt', 'channels', 'print, email, sms')}</label>
<label>Require consent ${yesNo('receipt.requireConsent', t.receipt?.requireConsent, !editable)}</label>
</fieldset>
<fieldset><legend>Display</legend>
<label>Idle message (up to 60 characters) ${input('display.idleMessage', 'display', 'idleMessage', 'e.g. Welcome!')}</label>
</fieldset>
<fieldset><legend>Offline mode</legend>
<label>Enabled ${yesNo('offlineMode.enabled', t.offlineMode?.enabled, !editable)}</label>
<label>Largest amount per sale (minor units) ${input('offlineMode.maxAmount', 'offlineMode', 'maxAmount', 'e.g. 5000')}</label>
<label>Sales held at most ${input('offlineMode.maxQueue', 'offlineMode', 'maxQueue', 'e.g. 100')}</label>
<label>Total per currency (minor units) ${input('offlineMode.maxTotal', 'offlineMode', 'maxTotal', 'e.g. EUR=50000')}</label>
<label>Expire after (hours, 1–72) ${input('offlineMode.maxAgeHours', 'offlineMode', 'maxAgeHours', 'e.g. 24')}</label>
</fieldset>`;
}
