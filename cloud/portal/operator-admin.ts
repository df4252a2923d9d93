import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Refusal } from '../../protocol/refusal.js';
import { openSqliteStore } from '../store/sqlite/sqlite-store.js';
import { OperatorAccounts } from './operator-accounts.js';

/**
 * `posagent-cloud user …`: the operator accounts of a cloud's data dir, changed beside a running
 * cloud (the store is shared; a running cloud sees the change on the next request).
 */
export function openOperatorAdmin(dataDir: string): { accounts: OperatorAccounts; close(): void } {
  const file = join(dataDir, 'cloud.db');
  if (!existsSync(file))
    throw new Refusal(
      'not_found',
      `no cloud store at ${file}: give the --data-dir of a cloud that has been started once (posagent-cloud serve)`,
    );
  const store = openSqliteStore(file);
  const accounts = new OperatorAccounts({
    operators: store.operators,
    sessions: store.portalSessions,
    failures: store.enrollmentLimits,
    now: () => Date.now(),
  });
  return { accounts, close: () => store.close() };
}

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
