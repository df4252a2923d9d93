import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, start, tempDir } from '../support/processes.js';

/** `npm run bench -- --quick` still runs and fills every row (its numbers are not judged here). */
describe('bench --quick', () => {
  it('prints the table and writes its results with every row measured', async () => {
    const out = join(tempDir('bench'), 'results.json');
    const p = start(join(ROOT, 'dist/bench/run-bench.js'), ['--quick', '--out', out]);
    const { code } = await p.exited;
    expect(code, p.stderr()).toBe(0);
    expect(p.output()).toMatch(/\| agent start → Online/);
    expect(p.output()).toMatch(/\| idle RSS/);
    expect(p.output()).toMatch(/\| idle RSS, the same agent beside the floor/);
    expect(p.output()).toMatch(/\| posagent status --json/);
    const results = JSON.parse(readFileSync(out, 'utf8')) as {
      quick: boolean;
      rows: { name: string; ours: number; reference: number }[];
    };
    expect(results.quick).toBe(true);
    expect(results.rows).toHaveLength(14);
    for (const r of results.rows) {
      expect(Number.isFinite(r.ours)).toBe(true);
      expect(Number.isFinite(r.reference)).toBe(true);
    }
    // Rates, times and sizes are positive; a growth or an idle CPU may be zero.
    for (const r of results.rows.filter((x) => !/growth|CPU/.test(x.name))) {
      expect(r.ours).toBeGreaterThan(0);
      expect(r.reference).toBeGreaterThan(0);
    }
    expect(p.output()).toMatch(/\| idle CPU over/);
    expect(p.output()).toMatch(/\| RSS growth after warm-up/);
    expect(p.output()).toMatch(/\| TLS handshakes per cloud core, full \(P-256 mTLS\)/);
    expect(p.output()).toMatch(/\| TLS handshakes per cloud core, resumed \(P-256 mTLS, 100 % resumed\)/);
    expect(p.output()).toMatch(
      /\| TLS handshakes per core, bare node:tls server, full \/ resumed \(100 % resumed\)/,
    );
    expect(p.stderr()).toMatch(/heap snapshots in the twin/);
  }, 180_000); // the quick bench measures each row once: about a minute on this 2-core host

  it('--only measures just the parts named, and names the known ones for an unknown part', async () => {
    const out = join(tempDir('bench'), 'results.json');
    const p = start(join(ROOT, 'dist/bench/run-bench.js'), [
      '--quick',
      '--only',
      'start,handshakes',
      '--out',
      out,
    ]);
    expect((await p.exited).code, p.stderr()).toBe(0);
    const names = (JSON.parse(readFileSync(out, 'utf8')) as { rows: { name: string }[] }).rows.map(
      (r) => r.name,
    );
    expect(names).toHaveLength(4);
    expect(names[0]).toMatch(/^agent start → Online/);
    expect(names.slice(1).every((n) => n.includes('TLS handshakes'))).toBe(true);
    const bad = start(join(ROOT, 'dist/bench/run-bench.js'), ['--only', 'startt']);
    expect((await bad.exited).code).not.toBe(0);
    expect(bad.stderr()).toMatch(
      /--only: unknown part "startt" \(known: start, idle, push, enqueue, status, drain, handshakes, memory\)/,
    );
  }, 180_000); // the quick bench measures each row once: about a minute on this 2-core host
});
