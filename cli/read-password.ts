import { Refusal } from '../protocol/refusal.js';

/**
 * The password: from stdin when it is not a terminal (`… | posagent-cloud user add`, scripts, tests),
 * the first line; asked twice without echo on a terminal.
 */
export async function readPassword(prompt: string): Promise<string> {
  if (!process.stdin.isTTY) {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of process.stdin) {
      size += (c as Buffer).length;
      if (size > 4096) throw new Refusal('weak_password', 'the password on stdin is longer than 4 KiB');
      chunks.push(c as Buffer);
    }
    return Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0]!;
  }
  const first = await askHidden(`${prompt}: `);
  const again = await askHidden('the same again: ');
  if (first !== again) throw new Refusal('invalid_request', 'the two passwords differ');
  return first;
}

function askHidden(question: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    process.stderr.write(question);
    stdin.setRawMode(true);
    stdin.resume();
    let value = '';
    const done = (err?: Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (b: Buffer) => {
      for (const ch of b.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') return done(new Refusal('cancelled', 'cancelled'));
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else value += ch;
      }
    };
    stdin.on('data', onData);
  });
}
