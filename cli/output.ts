/** Exit codes of every `posagent` command (GUIDE §5.1). */
export const ExitCode = {
  ok: 0,
  failed: 1,
  usage: 2,
  notEnrolled: 3,
  daemonNotRunning: 4,
  refused: 5,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** A failure a command reports: a stable code, a message for people, and the exit code. */
export class CommandError extends Error {
  override readonly name = 'CommandError';
  constructor(
    readonly code: string,
    message: string,
    readonly exitCode: ExitCode = ExitCode.failed,
    readonly hint?: string,
  ) {
    super(message);
  }
}

/** Writes a command's outcome: one JSON document on stdout with --json, human text otherwise. */
export interface Output {
  readonly json: boolean;
  result(doc: unknown, human: () => string): void;
  progress(line: string): void;
  error(err: CommandError): void;
}

export function createOutput(json: boolean, stdout = process.stdout, stderr = process.stderr): Output {
  const colour = !json && stderr.isTTY === true && !process.env.NO_COLOR;
  const red = (s: string) => (colour ? `\u001b[31m${s}\u001b[0m` : s);
  return {
    json,
    result(doc, human) {
      stdout.write(json ? `${JSON.stringify(doc, null, 2)}\n` : `${human()}\n`);
    },
    progress(line) {
      // Progress goes to stderr so that stdout stays one JSON document with --json.
      stderr.write(`${line}\n`);
    },
    error(err) {
      if (json) {
        stdout.write(
          `${JSON.stringify({ error: { code: err.code, message: err.message, ...(err.hint ? { hint: err.hint } : {}) } }, null, 2)}\n`,
        );
      } else {
        stderr.write(`${red('error:')} ${err.message}\n${err.hint ? `hint: ${err.hint}\n` : ''}`);
      }
    },
  };
}
