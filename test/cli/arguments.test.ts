import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { describe, expect, it } from 'vitest';
import { httpsUrl, integer, jsonRequested, text, usageError } from '../../cli/arguments.js';

/** The value parsers both CLIs share: a bad value is a usage error (exit 2) before anything runs. */
describe('cli arguments', () => {
  it('integer: in range, or a usage error naming the flag, the range and the value', () => {
    const limit = integer('--limit', 1, 1000);
    expect(limit('25')).toBe(25);
    expect(limit(' 7 ')).toBe(7);
    for (const bad of ['abc', '0', '1001', '1.5', '', '1e3'])
      expect(() => limit(bad)).toThrow(
        new InvalidArgumentError(`--limit must be an integer from 1 to 1000, got "${bad}"`),
      );
  });

  it('text: refuses an empty value and the next option taken by mistake', () => {
    const code = text('--code');
    expect(code('ABCD-1234')).toBe('ABCD-1234');
    expect(() => code('--json')).toThrow('--code needs a value; "--json" looks like the next option');
    expect(() => code('')).toThrow('--code needs a value; "" is empty');
  });

  it('httpsUrl: only an https:// URL with a host', () => {
    const cloud = httpsUrl('--cloud');
    expect(cloud('https://cloud.example:8443')).toBe('https://cloud.example:8443');
    for (const bad of ['http://cloud.example', 'cloud.example', 'https://', 'ftp://x'])
      expect(() => cloud(bad)).toThrow(`--cloud must be an https:// URL, got "${bad}"`);
  });

  it('jsonRequested: --json before a `--` only', () => {
    expect(jsonRequested(['status', '--json'])).toBe(true);
    expect(jsonRequested(['queue', '--', '--json'])).toBe(false);
    expect(jsonRequested(['status'])).toBe(false);
  });

  it('usageError: commander errors become {code: usage}; --help and --version are not errors', async () => {
    const program = new Command().exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
    program.option('--limit <n>', 'how many', integer('--limit', 1, 10));
    const err = await program.parseAsync(['--limit', '99'], { from: 'user' }).catch((e: unknown) => e);
    expect(usageError(err)).toEqual({
      code: 'usage',
      message: `option '--limit <n>' argument '99' is invalid. --limit must be an integer from 1 to 10, got "99"`,
    });
    expect(usageError(new CommanderError(0, 'commander.helpDisplayed', '(outputHelp)'))).toBeNull();
    expect(usageError(new Error('not commander'))).toBeNull();
  });
});
