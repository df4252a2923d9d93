import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, start } from '../support/processes.js';

/**
 * Issue 18.7: `npm run demo` (the built demo, as `npm run demo` runs it) walks the product and
 * leaves nothing behind: no CA key, no admin token, no terminal key in the temp dir.
 */
describe('npm run demo', () => {
  it('runs to the end and removes every temp dir it made', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'posagent-demo-test-'));
    const demo = start(join(ROOT, 'dist/demo/run-demo.js'), [], { TMPDIR: tmp });
    const { code } = await demo.exited;
    expect(code, demo.output() + demo.stderr()).toBe(0);
    expect(demo.output()).toMatch(/\d+\. Done/);
    expect(readdirSync(tmp)).toEqual([]);
    rmSync(tmp, { recursive: true, force: true });
  }, 120_000);
});
