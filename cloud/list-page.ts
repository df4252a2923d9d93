import { Refusal } from '../protocol/refusal.js';
import type { Page } from './store/store-types.js';

/**
 * The one list shape of the REST API (VINR): `{object: "list", data, has_more}`, paged with `limit`
 * (1–100, default 10) and `starting_after` (the id of the last item of the previous page). The
 * store pages by keyset on a stable order, so an item that changes between two pages is neither
 * skipped nor repeated, and a cursor stays valid whatever happened to its item.
 */
export interface ListOf<T> {
  object: 'list';
  data: T[];
  has_more: boolean;
}

export const MAX_LIMIT = 100;
const CURSOR = /^[A-Za-z0-9_-]{1,64}$/;

/** `limit` and `starting_after` from a query; a bad one is refused with what is allowed. */
export function pageOf(query: URLSearchParams, defaultLimit = 10): Page {
  const raw = query.get('limit');
  const limit = raw === null ? defaultLimit : /^\d{1,3}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT)
    throw new Refusal('invalid_request', `limit must be an integer from 1 to ${MAX_LIMIT}`);
  const after = query.get('starting_after');
  if (after !== null && !CURSOR.test(after))
    throw new Refusal(
      'invalid_request',
      'starting_after must be the id of an item of the previous page (letters, digits, _ and -, at most 64)',
    );
  return { after, limit };
}

/**
 * Reads one page plus one row through `fetch` (to know whether there is more), mapping each row.
 * `keep` filters what the store cannot (a derived status); rows are then read on in batches until
 * the page is full, so a filter never means building every item.
 */
export async function listPage<R extends { id: string }, T>(
  page: Page,
  fetch: (page: Page) => Promise<R[]> | R[],
  map: (row: R) => Promise<T> | T,
  keep: (row: R) => Promise<boolean> | boolean = () => true,
): Promise<ListOf<T>> {
  const out: T[] = [];
  let after = page.after;
  const batch = page.limit + 1;
  for (;;) {
    const rows = await fetch({ after, limit: batch });
    for (const r of rows) {
      if (!(await keep(r))) continue;
      if (out.length === page.limit) return { object: 'list', data: out, has_more: true };
      out.push(await map(r));
    }
    if (rows.length < batch) return { object: 'list', data: out, has_more: false };
    after = rows[rows.length - 1]!.id;
  }
}

/** A cursor that names nothing of this list is refused (not silently an empty page). */
export async function checkCursor(
  page: Page,
  exists: (id: string) => Promise<boolean> | boolean,
): Promise<void> {
  if (page.after !== null && !(await exists(page.after)))
    throw new Refusal('invalid_request', `starting_after ${page.after} is not an item of this list`);
}
