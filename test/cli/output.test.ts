import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { CommandError, createOutput, ExitCode } from '../../cli/output.js';

type Stdout = Parameters<typeof createOutput>[1];
type Stderr = Parameters<typeof createOutput>[2];

function streams() {
  const out = new PassThrough();
  const err = new PassThrough();
  const text = (s: PassThrough) => s.read()?.toString() ?? '';
  return { out, err, stdout: () => text(out), stderr: () => text(err) };
}

/** GUIDE §5.1: `--json` prints one JSON document on stdout and nothing else there. */
describe('cli output', () => {
  it('with --json: the result and an error are each one JSON document on stdout; progress goes to stderr', () => {
    const s = streams();
    const o = createOutput(true, s.out as unknown as Stdout, s.err as unknown as Stderr);
    o.progress('… enrolling');
    o.result({ enrolled: true }, () => 'human');
    expect(JSON.parse(s.stdout())).toEqual({ enrolled: true });
    expect(s.stderr()).toBe('… enrolling\n');
    o.error(
      new CommandError(
        'not_enrolled',
        'this terminal is not enrolled',
        ExitCode.notEnrolled,
        'run posagent enroll',
      ),
    );
    expect(JSON.parse(s.stdout())).toEqual({
      error: { code: 'not_enrolled', message: 'this terminal is not enrolled', hint: 'run posagent enroll' },
    });
  });

  it('without --json: human text on stdout, errors with their hint on stderr, no colour off a TTY', () => {
    const s = streams();
    const o = createOutput(false, s.out as unknown as Stdout, s.err as unknown as Stderr);
    o.result({ enrolled: true }, () => 'enrolled: yes');
    expect(s.stdout()).toBe('enrolled: yes\n');
    o.error(new CommandError('refused', 'unsent transactions exist', ExitCode.refused, 'use --force'));
    expect(s.stderr()).toBe('error: unsent transactions exist\nhint: use --force\n');
  });

  it('the exit codes of GUIDE §5.1', () => {
    expect(ExitCode).toEqual({ ok: 0, failed: 1, usage: 2, notEnrolled: 3, daemonNotRunning: 4, refused: 5 });
    expect(new CommandError('x', 'y').exitCode).toBe(ExitCode.failed);
  });
});
