import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The layering of GUIDE §2, checked over the source: which folder may import which, and no import
 * cycle among the product's files. An import is any relative `….js` specifier (static, dynamic or
 * `export … from`), resolved to the `.ts` file it names.
 */
const ROOT = join(import.meta.dirname, '../..');

/** For each product folder, the folders (besides itself) it may import. Lower folders come first. */
const MAY_IMPORT: Record<string, string[]> = {
  protocol: [],
  /** Durable file writes, the one piece of I/O both sides share (and the installer). */
  files: [],
  identity: ['files', 'protocol'],
  'cloud-access': ['protocol'],
  enroll: ['identity', 'cloud-access', 'protocol'],
  release: ['files', 'protocol'],
  agent: ['release', 'enroll', 'identity', 'cloud-access', 'files', 'protocol'],
  diagnostics: ['agent', 'release', 'enroll', 'identity', 'cloud-access', 'files', 'protocol'],
  cloud: ['files', 'protocol'],
  cli: [
    'diagnostics',
    'agent',
    'release',
    'enroll',
    'identity',
    'cloud-access',
    'cloud',
    'files',
    'protocol',
  ],
};
const PRODUCT = Object.keys(MAY_IMPORT);
/**
 * Outside the product: harness/ starts real clouds and agents on loopback for the demo, the bench
 * and the tests; nothing imports demo/, bench/ or test/, and the product imports none of them.
 */
const TOOLING: Record<string, string[]> = {
  harness: [...PRODUCT],
  demo: ['harness', ...PRODUCT],
  bench: ['harness', ...PRODUCT],
  test: ['harness', ...PRODUCT],
};

interface Edge {
  from: string;
  to: string;
}

function sources(folder: string): string[] {
  const dir = join(ROOT, folder);
  if (!existsSync(dir)) return [];
  return (readdirSync(dir, { recursive: true }) as string[])
    .filter((f) => f.endsWith('.ts'))
    .map((f) => join(folder, f));
}

function importsOf(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const found: string[] = [];
  for (const m of text.matchAll(/(['"])(\.{1,2}\/[^'"\s]+?\.js)\1/g)) {
    const target = normalize(join(dirname(file), m[2]!)).replace(/\.js$/, '.ts');
    if (existsSync(join(ROOT, target))) found.push(target);
  }
  return found;
}

const folderOf = (file: string) => file.split('/')[0]!;
const all = [...PRODUCT, ...Object.keys(TOOLING)].flatMap(sources);
const edges: Edge[] = all.flatMap((from) => importsOf(from).map((to) => ({ from, to })));

describe('layering (GUIDE §2)', () => {
  it('reads the whole tree', () => {
    expect(all.length).toBeGreaterThan(150);
    expect(edges.length).toBeGreaterThan(300);
  });

  it('every folder imports only the folders below it', () => {
    const rules = { ...MAY_IMPORT, ...TOOLING };
    const wrong = edges
      .filter(({ from, to }) => {
        const a = folderOf(from);
        const b = folderOf(to);
        return a !== b && !(rules[a] ?? []).includes(b);
      })
      .map(({ from, to }) => `${from} → ${to}`);
    expect(wrong).toEqual([]);
  });

  it('the product never imports the tooling (harness, demo, bench, test)', () => {
    const wrong = edges
      .filter(({ from, to }) => PRODUCT.includes(folderOf(from)) && !PRODUCT.includes(folderOf(to)))
      .map(({ from, to }) => `${from} → ${to}`);
    expect(wrong).toEqual([]);
  });

  it('protocol/ imports nothing of ours', () => {
    expect(
      edges.filter(({ from, to }) => folderOf(from) === 'protocol' && folderOf(to) !== 'protocol'),
    ).toEqual([]);
  });

  it('no import cycle among the product files', () => {
    const next = new Map<string, string[]>();
    for (const { from, to } of edges)
      if (PRODUCT.includes(folderOf(from))) next.set(from, [...(next.get(from) ?? []), to]);
    const state = new Map<string, 'open' | 'done'>();
    const cycles: string[] = [];
    const visit = (file: string, path: string[]) => {
      if (state.get(file) === 'done') return;
      if (state.get(file) === 'open') {
        cycles.push([...path.slice(path.indexOf(file)), file].map((f) => relative('.', f)).join(' → '));
        return;
      }
      state.set(file, 'open');
      for (const to of next.get(file) ?? []) visit(to, [...path, file]);
      state.set(file, 'done');
    };
    for (const file of next.keys()) visit(file, []);
    expect(cycles).toEqual([]);
  });

  it('test/ mirrors the tree: each test folder is a source folder (or says what it runs), each agent feature has one', () => {
    const RUNS = ['support', 'e2e', 'architecture', 'docs', 'system', 'systemd'];
    const folders = readdirSync(join(ROOT, 'test'), { withFileTypes: true }).filter((d) => d.isDirectory());
    const strays = folders.map((d) => d.name).filter((n) => !RUNS.includes(n) && !existsSync(join(ROOT, n)));
    expect(strays).toEqual([]);
    for (const feature of ['link', 'transactions', 'actions', 'config', 'events', 'local-api', 'status'])
      expect(existsSync(join(ROOT, 'test/agent', feature)), `test/agent/${feature}`).toBe(true);
    for (const side of ['cli', 'diagnostics', 'identity', 'cloud-access', 'enroll'])
      expect(existsSync(join(ROOT, 'test', side)), `test/${side}`).toBe(true);
  });
});
