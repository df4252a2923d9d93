import { type Command, CommanderError, InvalidArgumentError } from 'commander';

/**
 * What both CLIs (`posagent`, `posagent-cloud`) share about their arguments: value parsers that
 * make a bad value a usage error (exit 2) before anything runs — whether the daemon is up or not —
 * and usage errors as one JSON document on stdout when `--json` was asked for (GUIDE §5.1).
 */

/** An integer in [min, max]: `--limit abc`, `--port 99999` are usage errors, never a false network failure. */
export function integer(flag: string, min: number, max: number) {
  return (value: string): number => {
    const n = /^-?\d+$/.test(value.trim()) ? Number(value) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max)
      throw new InvalidArgumentError(`${flag} must be an integer from ${min} to ${max}, got "${value}"`);
    return n;
  };
}

/** A value that is not the next option taken by mistake (`enroll --code --json`). */
export function text(flag: string) {
  return (value: string): string => {
    if (value === '' || value.startsWith('-'))
      throw new InvalidArgumentError(
        `${flag} needs a value; "${value}" ${value === '' ? 'is empty' : 'looks like the next option'}`,
      );
    return value;
  };
}

/** An https:// base URL (the cloud's). */
export function httpsUrl(flag: string) {
  return (value: string): string => {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw new InvalidArgumentError(`${flag} must be an https:// URL, got "${value}"`);
    }
    if (url.protocol !== 'https:' || !url.hostname)
      throw new InvalidArgumentError(`${flag} must be an https:// URL, got "${value}"`);
    return value;
  };
}

/** Whether the command line asked for `--json` (looked at before parsing, so usage errors honour it). */
export function jsonRequested(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).includes('--json');
}

/**
 * With `--json`, commander's own error text is not written (stdout must hold one JSON document,
 * written by `usageError`); without it, errors go to stderr as usual.
 */
export function quietWhenJson(program: Command, json: boolean): Command {
  return json ? program.configureOutput({ outputError: () => {}, writeErr: () => {} }) : program;
}

/** A usage error from commander: `{code, message}`, or null for --help / --version (exit 0). */
export function usageError(err: unknown): { code: string; message: string } | null {
  if (!(err instanceof CommanderError) || err.exitCode === 0) return null;
  return { code: 'usage', message: err.message.replace(/^error: /, '') };
}
