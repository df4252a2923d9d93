import { html, type SafeHtml } from '../html.js';

/** The words support staff use for each status (the PeakPOS guide's column). */
const STATUS_WORDS: Record<string, string> = {
  online: 'Online',
  needs_attention: 'At risk',
  offline: 'Offline',
  provisioning: 'Provisioning',
  error: 'Error',
  deactivated: 'Deactivated',
};

export function statusWord(status: string): string {
  return STATUS_WORDS[status] ?? status;
}

export function statusBadge(status: string, reason?: string | null): SafeHtml {
  return html`<span class="status status-${status}">${statusWord(status)}${reason ? html` <span class="muted">(${reason})</span>` : ''}</span>`;
}

/** A REST timestamp (Unix seconds, or an ISO string from an older field) in Unix seconds. */
export function unixOf(t: number | string | null | undefined): number | null {
  if (t === null || t === undefined) return null;
  if (typeof t === 'number') return t;
  const ms = Date.parse(t);
  return Number.isNaN(ms) ? null : ms / 1000;
}

/** "3 min ago", with the exact UTC time on hover and for machines. */
export function ago(t: number | string | null | undefined, nowMs: number): SafeHtml {
  const unixSec = unixOf(t);
  if (unixSec === null) return html`<span class="muted">never</span>`;
  const iso = new Date(unixSec * 1000).toISOString();
  return html`<time datetime="${iso}" title="${iso.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}">${relative(nowMs / 1000 - unixSec)}</time>`;
}

export function relative(sec: number): string {
  if (sec < 0) return 'in the future';
  if (sec < 60) return `${Math.floor(sec)} s ago`;
  if (sec < 3600) return `${Math.floor(sec / 60)} min ago`;
  if (sec < 86_400) return `${Math.floor(sec / 3600)} h ago`;
  return `${Math.floor(sec / 86_400)} days ago`;
}

/** Certificates this close to expiry get a warning: the agent renews from a third of its life before. */
export const EXPIRY_WARNING_DAYS = 14;

export function certificateExpiry(notAfter: string | number, nowMs: number): SafeHtml {
  const at = (unixOf(notAfter) ?? 0) * 1000;
  const iso = new Date(at).toISOString();
  const day = iso.slice(0, 10);
  const days = Math.floor((at - nowMs) / 86_400_000);
  if (at <= nowMs) return html`<time datetime="${iso}" class="bad">expired ${day}</time>`;
  if (days < EXPIRY_WARNING_DAYS)
    return html`<time datetime="${iso}" class="warn" title="${iso}">⚠ ${day} (in ${days} days)</time>`;
  return html`<time datetime="${iso}" title="${iso}">${day}</time>`;
}

export function connectedMark(connected: boolean): SafeHtml {
  return connected
    ? html`<span class="ok" title="WebSocket connected">● <span class="visually-hidden">connected</span></span>`
    : html`<span class="muted" title="WebSocket not connected">○ <span class="visually-hidden">not connected</span></span>`;
}

/** The Adyen POIID of a terminal: `[model]-[serial]`, when both are known. */
export function poiid(t: { model: string | null; serialNumber: string | null }): string | null {
  return t.model && t.serialNumber ? `${t.model}-${t.serialNumber}` : null;
}
