import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/**
 * What the portal's pages load besides themselves: one stylesheet (below) and htmx, served from
 * the cloud (never a CDN). The bundle carries htmx beside itself (`dist/bin/assets/`, copied at
 * build time); run from sources or tsc's output it comes from node_modules.
 */
export const PORTAL_CSS = `
:root { color-scheme: light; --fg: #1b1f24; --muted: #4b5563; --line: #d0d5dd; --bg: #ffffff; --soft: #f3f4f6;
  --accent: #0b57d0; --ok: #0a6b2f; --warn: #8a4b00; --bad: #b42318; --off: #4b5563; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
a { color: var(--accent); }
a:focus-visible, button:focus-visible, input:focus-visible, select:focus-visible, textarea:focus-visible, summary:focus-visible {
  outline: 3px solid var(--accent); outline-offset: 2px; }
.skip { position: absolute; left: -999px; top: 0; background: var(--fg); color: #fff; padding: .5rem 1rem; }
.skip:focus { left: .5rem; }
header { border-bottom: 1px solid var(--line); background: var(--soft); }
header nav { display: flex; flex-wrap: wrap; gap: .25rem 1.25rem; align-items: center; max-width: 80rem; margin: 0 auto; padding: .6rem 1rem; }
header nav .brand { font-weight: 700; color: var(--fg); text-decoration: none; }
header nav .who { margin-left: auto; color: var(--muted); }
header form { display: inline; }
main { max-width: 80rem; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.5rem; margin: .5rem 0 1rem; }
h2 { font-size: 1.15rem; margin: 1.5rem 0 .5rem; }
.crumbs { color: var(--muted); margin: 0 0 .25rem; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .45rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--soft); font-weight: 600; white-space: nowrap; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1rem; margin: 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
.status { font-weight: 600; white-space: nowrap; }
.status-online { color: var(--ok); } .status-needs_attention { color: var(--warn); }
.status-offline, .status-deactivated, .status-provisioning { color: var(--off); } .status-error { color: var(--bad); }
.warn { color: var(--warn); font-weight: 600; } .bad { color: var(--bad); font-weight: 600; } .ok { color: var(--ok); font-weight: 600; }
.muted { color: var(--muted); }
form.inline { display: inline-flex; gap: .5rem; flex-wrap: wrap; align-items: end; margin: 0 .5rem .5rem 0; }
form.stack { display: grid; gap: .75rem; max-width: 32rem; }
label { display: grid; gap: .2rem; font-weight: 600; }
input, select, textarea, button { font: inherit; font-weight: 400; padding: .45rem .6rem; border: 1px solid #8a94a6; border-radius: .3rem; background: #fff; color: var(--fg); }
textarea { width: 100%; min-height: 14rem; font-family: ui-monospace, monospace; }
button { cursor: pointer; background: var(--accent); color: #fff; border-color: var(--accent); font-weight: 600; }
button.secondary { background: #fff; color: var(--accent); }
button.danger { background: var(--bad); border-color: var(--bad); }
.notice { border-left: 4px solid var(--accent); background: var(--soft); padding: .6rem 1rem; margin: 0 0 1rem; }
.error-box { border-left: 4px solid var(--bad); background: #fef3f2; padding: .6rem 1rem; margin: 0 0 1rem; }
.code { font: 700 1.6rem ui-monospace, monospace; letter-spacing: .1em; }
pre { background: var(--soft); padding: .75rem; overflow-x: auto; white-space: pre-wrap; }
.filters { display: flex; flex-wrap: wrap; gap: .75rem; align-items: end; margin-bottom: 1rem; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
@media (max-width: 40rem) { th, td { padding: .35rem .4rem; } body { font-size: 15px; } }
`;

/** The portal's own script: copy buttons (`data-copy="<element id>"`). Served as a file: no inline script. */
export const PORTAL_JS = `
document.addEventListener('click', (e) => {
  const button = e.target.closest && e.target.closest('button[data-copy]');
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  if (!source || !navigator.clipboard) return;
  navigator.clipboard.writeText(source.textContent).then(() => {
    const was = button.textContent;
    button.textContent = 'Copied';
    setTimeout(() => { button.textContent = was; }, 1500);
  });
});
`;

let htmx: Buffer | undefined;

/** htmx's minified source (read once). */
export function htmxSource(): Buffer {
  if (htmx) return htmx;
  for (const rel of ['./assets/htmx.min.js', '../assets/htmx.min.js']) {
    const f = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(f)) {
      htmx = readFileSync(f);
      return htmx;
    }
  }
  try {
    htmx = readFileSync(createRequire(import.meta.url).resolve('htmx.org/dist/htmx.min.js'));
    return htmx;
  } catch {
    throw new Error('htmx.min.js is missing beside the cloud (a broken build: npm run build copies it)');
  }
}
