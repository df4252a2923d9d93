import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../support/processes.js';

/**
 * Issue 18.7: the README's "Running it by hand" block works pasted as a whole — run here exactly as
 * it is in the README, with bash, errors fatal — and leaves nothing behind (its temp dir removed,
 * no reboot command that could reboot this machine).
 */
function byHandBlock(): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Running it by hand'));
  const m = /```sh\n([\s\S]*?)```/.exec(section);
  if (!m) throw new Error('no sh block under "## Running it by hand" in README.md');
  return m[1]!;
}

describe('README: running it by hand', () => {
  it('the block runs as a whole: the terminal goes online, and everything is removed at the end', async () => {
    const block = byHandBlock();
    expect(block).toMatch(/rebootCommand/); // the daemon is given a reboot command that only prints
    expect(block).not.toMatch(/systemctl reboot/);
    const tmp = mkdtempSync(join(tmpdir(), 'posagent-readme-'));
    const child = spawn('bash', ['-euo', 'pipefail', '-c', block], {
      cwd: ROOT,
      env: { ...process.env, TMPDIR: tmp },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    if (/curl: (command )?not found/.test(err))
      throw new Error('the README block needs curl: apt-get install curl');
    expect(code, `${out}\n${err}`).toBe(0);
    expect(out).toMatch(/Cloud link: +online since/);
    expect(out).toMatch(/Front Register 1: online/);
    expect(readdirSync(tmp)).toEqual([]);
  }, 120_000);
});
