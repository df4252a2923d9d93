import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, start } from '../support/processes.js';

/** `npm run bench -- --quick` still runs and fills every row (its numbers are not judged here). */
describe('bench --quick', () => {
  it('prints the table and writes bench/results.json with every row measured', async () => {
    const p = start(join(ROOT, 'dist/bench/run-bench.js'), ['--quick']);
    const { code } = await p.exited;
    expect(code, p.stderr()).toBe(0);
    expect(p.output()).toMatch(/\| agent start → Online/);
    expect(p.output()).toMatch(/\| idle RSS/);
    expect(p.output()).toMatch(/\| posagent status --json/);
    const results = JSON.parse(readFileSync(join(ROOT, 'bench/results.json'), 'utf8')) as {
      quick: boolean;
      rows: { ours: number; reference: number }[];
    };
    expect(results.quick).toBe(true);
    expect(results.rows).toHaveLength(8);
    for (const r of results.rows) {
      expect(r.ours).toBeGreaterThan(0);
      expect(r.reference).toBeGreaterThan(0);
    }
  });
});
