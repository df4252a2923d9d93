import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { waitFor } from '../harness/wait-for.js';

/**
 * Where a process's heap grew between two V8 heap snapshots (`--heapsnapshot-signal`): the
 * objects' self sizes summed by constructor (node type + name), the largest growths first.
 */
interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
  nodes: number[];
  strings: string[];
}

export function heapByConstructor(file: string): Map<string, { count: number; bytes: number }> {
  const s = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
  const fields = s.snapshot.meta.node_fields;
  const types = s.snapshot.meta.node_types[0];
  const width = fields.length;
  const [iType, iName, iSize] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f)) as [
    number,
    number,
    number,
  ];
  const out = new Map<string, { count: number; bytes: number }>();
  for (let i = 0; i < s.nodes.length; i += width) {
    const type = types[s.nodes[i + iType]!] ?? '?';
    const name =
      type === 'string' || type === 'concatenated string' ? '(strings)' : s.strings[s.nodes[i + iName]!]!;
    const key = `${type}:${name.slice(0, 60)}`;
    const e = out.get(key) ?? { count: 0, bytes: 0 };
    e.count++;
    e.bytes += s.nodes[i + iSize]!;
    out.set(key, e);
  }
  return out;
}

export interface HeapGrowth {
  totalBytes: [number, number];
  top: { what: string; count: number; bytes: number }[];
}

/** The growth from `before` to `after`, the `n` largest by bytes. */
export function heapGrowth(before: string, after: string, n = 8): HeapGrowth {
  const a = heapByConstructor(before);
  const b = heapByConstructor(after);
  const total = (m: typeof a) => [...m.values()].reduce((x, e) => x + e.bytes, 0);
  const top = [...b]
    .map(([what, e]) => ({
      what,
      count: e.count - (a.get(what)?.count ?? 0),
      bytes: e.bytes - (a.get(what)?.bytes ?? 0),
    }))
    .sort((x, y) => y.bytes - x.bytes)
    .slice(0, n);
  return { totalBytes: [total(a), total(b)], top };
}

/** The heap snapshots in `dir`, oldest first. */
export function snapshotsIn(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.heapsnapshot'))
    .sort()
    .map((f) => join(dir, f));
}

/**
 * Has a process started with `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=DIR` write a heap
 * snapshot, and waits until it is complete (V8 writes in place: its size settles); the file.
 */
export async function heapSnapshotOf(pid: number, dir: string, timeoutMs: number): Promise<string> {
  const n = snapshotsIn(dir).length;
  process.kill(pid, 'SIGUSR2');
  await waitFor(() => (snapshotsIn(dir).length > n ? true : undefined), 'a heap snapshot', timeoutMs, 200);
  const file = snapshotsIn(dir).at(-1)!;
  let last = -1;
  await waitFor(
    () => {
      const size = sizeOf(file);
      const same = size === last && size > 0;
      last = size;
      return same ? true : undefined;
    },
    'the heap snapshot written',
    timeoutMs,
    500,
  );
  return file;
}

function sizeOf(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return -1;
  }
}
