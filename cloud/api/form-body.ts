import { Refusal } from '../../protocol/refusal.js';

/**
 * `application/x-www-form-urlencoded` bodies (what `curl -d` sends, as in the VINR examples),
 * read into the same object a JSON body would be: `a=1&b=x` → `{a: "1", b: "x"}`, brackets nest
 * (`tip[mode]=percentage`, `events[]=terminal.online`). Values stay strings: the route's schema
 * converts them (cloud/body-validation.ts). Bounded: fields, key length, nesting depth.
 */
export const MAX_FORM_FIELDS = 200;
export const MAX_FORM_KEY = 200;
export const MAX_FORM_DEPTH = 4;

const bad = (message: string) => new Refusal('invalid_form', message);

/** `a[b][]` → ["a", "b", ""]; a key that is not `name` followed by `[…]` parts is refused. */
function pathOf(key: string): string[] {
  const m = /^([^[\]]+)((?:\[[^[\]]*\])*)$/.exec(key);
  if (!m) throw bad(`form field name ${JSON.stringify(key.slice(0, 64))} is not name or name[key]…`);
  const parts = [m[1]!];
  for (const p of m[2]!.matchAll(/\[([^[\]]*)\]/g)) parts.push(p[1]!);
  if (parts.length > MAX_FORM_DEPTH + 1)
    throw bad(`form field ${JSON.stringify(key.slice(0, 64))} nests deeper than ${MAX_FORM_DEPTH} levels`);
  return parts;
}

const FORBIDDEN = new Set(['__proto__', 'constructor', 'prototype']);

export function parseFormBody(text: string): Record<string, unknown> {
  const out: Record<string, unknown> = Object.create(null);
  let fields = 0;
  for (const pair of text.split('&')) {
    if (pair === '') continue;
    if (++fields > MAX_FORM_FIELDS) throw bad(`a form body has at most ${MAX_FORM_FIELDS} fields`);
    const eq = pair.indexOf('=');
    let key: string;
    let value: string;
    try {
      key = decodeURIComponent((eq < 0 ? pair : pair.slice(0, eq)).replace(/\+/g, ' '));
      value = eq < 0 ? '' : decodeURIComponent(pair.slice(eq + 1).replace(/\+/g, ' '));
    } catch {
      throw bad(`form field ${JSON.stringify(pair.slice(0, 64))} is not valid percent-encoding`);
    }
    if (key.length === 0 || key.length > MAX_FORM_KEY)
      throw bad(`a form field name must be 1–${MAX_FORM_KEY} characters`);
    const path = pathOf(key);
    let node: Record<string, unknown> | unknown[] = out;
    for (let i = 0; i < path.length; i++) {
      const part = path[i]!;
      if (FORBIDDEN.has(part)) throw bad(`form field name ${JSON.stringify(key)} is not allowed`);
      const last = i === path.length - 1;
      if (Array.isArray(node)) {
        if (part !== '' || !last)
          throw bad(`form field ${JSON.stringify(key)}: only a last [] may follow an array`);
        node.push(value);
        break;
      }
      const nextIsArray = path[i + 1] === '';
      if (part === '') throw bad(`form field ${JSON.stringify(key)}: [] must come last`);
      if (last) {
        if (part in node) throw bad(`form field ${JSON.stringify(key)} is given twice`);
        node[part] = value;
        break;
      }
      const existing: unknown = node[part];
      if (existing === undefined) {
        const child: Record<string, unknown> | unknown[] = nextIsArray ? [] : Object.create(null);
        node[part] = child;
        node = child;
      } else if (typeof existing === 'object' && existing !== null && Array.isArray(existing) === nextIsArray)
        node = existing as Record<string, unknown> | unknown[];
      else throw bad(`form field ${JSON.stringify(key)} mixes a value, an object and a list`);
    }
  }
  return JSON.parse(JSON.stringify(out)) as Record<string, unknown>;
}
