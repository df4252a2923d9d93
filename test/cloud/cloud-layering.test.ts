import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The layers inside cloud/ (docs/architecture.md, "The cloud by concern"), checked over the
 * source: a folder imports only folders below it, siblings never each other, and no file cycle.
 * `shared` is the top-level files every concern uses (ids, events, body validation, logger);
 * `root` is the composition root (main.ts, cloud-options.ts, parts.ts).
 */
const LAYERS: Record<string, string[]> = {
  store: [],
  'store/sqlite': ['store'],
  'store/postgres': ['store'],
  shared: ['store'],
  identity: ['shared', 'store'],
  enrollment: ['identity', 'shared', 'store'],
  actions: ['shared', 'store'],
  ledger: ['shared', 'store'],
  /** Staged rollouts over the update action (issue 24). */
  deployments: ['actions', 'shared', 'store'],
  webhooks: ['actions', 'deployments', 'shared', 'store'],
  fleet: ['webhooks', 'shared', 'store'],
  api: ['fleet', 'webhooks', 'deployments', 'enrollment', 'actions', 'ledger', 'identity', 'shared', 'store'],
  gateway: ['api', 'ledger', 'identity', 'shared', 'store'],
  /** The support portal: a second HTTP edge over the same services (pages/ is part of it). */
  portal: ['api', 'fleet', 'deployments', 'enrollment', 'actions', 'shared', 'store'],
};
/** Subfolders that belong to their parent's layer. */
const PART_OF: Record<string, string> = { 'portal/pages': 'portal' };
const ROOT_FILES = new Set([
  'main.ts',
  'cloud-options.ts',
  'parts.ts',
  'operator-admin.ts',
  'open-store.ts',
  'event-wiring.ts',
]);
const CLOUD = join(import.meta.dirname, '../../cloud');

const files = (readdirSync(CLOUD, { recursive: true }) as string[]).filter((f) => f.endsWith('.ts'));
const layerOf = (f: string) => {
  const dir = dirname(f);
  if (dir === '.') return ROOT_FILES.has(f) ? 'root' : 'shared';
  return PART_OF[dir] ?? dir;
};
const importsOf = (f: string) =>
  [...readFileSync(join(CLOUD, f), 'utf8').matchAll(/(['"])(\.{1,2}\/[^'"\s]+?\.js)\1/g)]
    .map((m) => normalize(join(dirname(f), m[2]!)).replace(/\.js$/, '.ts'))
    // A relative `….js` string that names no source file (an asset beside the bundle) is no import.
    .filter((t) => !t.startsWith('..') && existsSync(join(CLOUD, t)));

describe('layers inside cloud/', () => {
  it('every folder of cloud/ has its layer', () => {
    expect(files.length).toBeGreaterThan(40);
    const unknown = [...new Set(files.map(layerOf))].filter((l) => l !== 'root' && !(l in LAYERS));
    expect(unknown).toEqual([]);
  });

  it('a folder imports only the layers below it (the composition root may import all)', () => {
    const wrong = files.flatMap((f) =>
      importsOf(f)
        .filter((t) => {
          const a = layerOf(f);
          const b = layerOf(t);
          return a !== 'root' && a !== b && !(LAYERS[a] ?? []).includes(b);
        })
        .map((t) => `${f} → ${t}`),
    );
    expect(wrong).toEqual([]);
  });

  it('no import cycle among the files of cloud/', () => {
    const graph = new Map(files.map((f) => [f, importsOf(f)]));
    const cycles: string[] = [];
    const state = new Map<string, 'visiting' | 'done'>();
    const visit = (f: string, path: string[]) => {
      if (state.get(f) === 'done') return;
      if (state.get(f) === 'visiting') {
        cycles.push([...path.slice(path.indexOf(f)), f].join(' → '));
        return;
      }
      state.set(f, 'visiting');
      for (const t of graph.get(f) ?? []) visit(t, [...path, f]);
      state.set(f, 'done');
    };
    for (const f of files) visit(f, []);
    expect(cycles).toEqual([]);
  });

  it('cloud/main.ts is wiring only: under 200 lines, no routes, no SQL, no status codes', () => {
    const main = readFileSync(join(CLOUD, 'main.ts'), 'utf8');
    expect(main.split('\n').length).toBeLessThan(200);
    expect(main).not.toMatch(/pattern:|method: '|SELECT |INSERT |UPDATE |\b[45]\d\d\b,|new Refusal/);
  });
});
