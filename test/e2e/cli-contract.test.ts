import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AgentDirs,
  agentDirs,
  type Cloud,
  enrollAgent,
  POSAGENT,
  POSAGENT_CLOUD,
  type Proc,
  restartCloud,
  start,
  startAgent,
  startCloud,
  tempDir,
  waitForLink,
} from '../support/processes.js';
import { waitFor } from '../support/wait-for.js';

/**
 * Issue 18.3: both CLIs keep their contract (GUIDE §5.1) — a table over every command ×
 * {usage error, bad value} × {daemon up, down} × {--json, human}: the exit code (0 ok · 1 failed ·
 * 2 usage · 3 not enrolled · 4 daemon not running · 5 refused), and with --json stdout parses as
 * exactly one JSON document. The real binaries (dist/bin), real daemons and a real cloud.
 */
interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(bin: string, args: string[]): Promise<Run> {
  const p = start(bin, args);
  return p.exited.then(({ code }) => ({ code, stdout: p.output(), stderr: p.stderr() }));
}

/** Runs the rows a few at a time (two cores here). */
async function inBatches<T, R>(rows: T[], fn: (row: T) => Promise<R>, size = 4): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < rows.length; i += size)
    out.push(...(await Promise.all(rows.slice(i, i + size).map(fn))));
  return out;
}

/** stdout is exactly one JSON document (JSON.parse refuses two, or trailing text). */
function oneDocument(r: Run, what: string): Record<string, unknown> {
  try {
    return JSON.parse(r.stdout) as Record<string, unknown>;
  } catch {
    throw new Error(
      `${what}: stdout is not one JSON document (exit ${r.code}):\n${r.stdout}\n--- stderr\n${r.stderr}`,
    );
  }
}

const SETTINGS = (d: AgentDirs) => ['--settings', join(d.stateDir, '..', 'agent.json')];

/** Every `posagent` command: a usage error and the bad values the issue found, or like them. */
const POSAGENT_ROWS: { command: string; usage: string[]; bad: string[][] }[] = [
  {
    command: 'enroll',
    usage: ['enroll', '--no-such-flag'],
    bad: [
      ['enroll', '--code', '--force'], // the next option taken as the code (`--code --json` too)
      ['enroll', '--cloud', 'not a url', '--code', 'ABCD-EFGH'],
      ['enroll', '--cloud', 'http://cloud.example', '--code', 'ABCD-EFGH'],
    ],
  },
  {
    command: 'run',
    usage: ['run', '--no-such-flag'],
    bad: [
      ['run', '--log-level', 'loud'],
      ['run', '--cloud-url', 'ftp://cloud.example'],
    ],
  },
  { command: 'status', usage: ['status', '--no-such-flag'], bad: [['status', '--state-dir', '']] },
  { command: 'config', usage: ['config', '--no-such-flag'], bad: [['config', '--runtime-dir', '']] },
  {
    command: 'queue',
    usage: ['queue', '--no-such-flag'],
    bad: [
      ['queue', '--limit', 'abc'],
      ['queue', 'list', '--limit', '0'],
      ['queue', 'list', '--state', 'lost'],
      ['queue', 'bogus'],
      ['queue', 'show'],
    ],
  },
  { command: 'cert', usage: ['cert', '--no-such-flag'], bad: [['cert', '--settings', '']] },
  {
    command: 'reprovision',
    usage: ['reprovision', '--no-such-flag'],
    bad: [['reprovision', '--settings', '']],
  },
  {
    command: 'decommission',
    usage: ['decommission', '--no-such-flag'],
    bad: [['decommission', '--settings', '']],
  },
  {
    command: 'diagnostics',
    usage: ['diagnostics', '--no-such-flag'],
    bad: [
      ['diagnostics', '--timeout-ms', 'abc'],
      ['diagnostics', '--bundle', '--timeout-ms'],
    ],
  },
  { command: 'menu', usage: ['menu', '--no-such-flag'], bad: [['menu', '--settings', '']] },
  { command: '(none)', usage: ['no-such-command'], bad: [['--no-such-flag']] },
];

describe('CLI contract (GUIDE §5.1)', () => {
  let cloud: Cloud;
  let enrolled: Awaited<ReturnType<typeof enrollAgent>>;
  const unenrolled = agentDirs();
  let daemons: Proc[] = [];

  const up = async () => {
    daemons = [startAgent(enrolled.dirs), startAgent(unenrolled)];
    await waitForLink(enrolled.dirs);
    await waitFor(
      () => (existsSync(`${unenrolled.runtimeDir}/api.sock`) ? true : undefined),
      'the unenrolled daemon',
    );
  };
  const down = async () => {
    for (const d of daemons) d.child.kill('SIGTERM');
    await Promise.all(daemons.map((d) => d.exited));
    daemons = [];
  };

  beforeAll(async () => {
    cloud = await startCloud();
    enrolled = await enrollAgent(cloud);
  });
  afterAll(async () => {
    for (const d of daemons) d.child.kill('SIGKILL');
    await cloud?.stop();
  });

  for (const daemon of ['up', 'down'] as const) {
    it(`posagent: every command's usage error and bad values exit 2, daemon ${daemon}; --json prints one error document`, async () => {
      if (daemon === 'up') await up();
      try {
        const cases = POSAGENT_ROWS.flatMap((row) =>
          [row.usage, ...row.bad].flatMap((args) =>
            // Enrolled or not does not change a usage error; enroll's rows run on both.
            (row.command === 'enroll' ? [enrolled.dirs, unenrolled] : [enrolled.dirs]).flatMap((dirs) =>
              [true, false].map((asJson) => ({ row, args, dirs, asJson })),
            ),
          ),
        );
        const failures: string[] = [];
        await inBatches(cases, async ({ row, args, dirs, asJson }) => {
          const argv = [...args, ...(asJson ? ['--json'] : []), ...dirs.flags];
          const r = await run(POSAGENT, argv);
          const what = `posagent ${argv.join(' ')} (daemon ${daemon})`;
          if (r.code !== 2) failures.push(`${what}: exit ${r.code}, want 2\n${r.stdout}${r.stderr}`);
          if (asJson) {
            const doc = oneDocument(r, what) as { error?: { code: string; message: string } };
            if (doc.error?.code !== 'usage' || !doc.error.message)
              failures.push(`${what}: ${JSON.stringify(doc)} is not a usage error document`);
          } else {
            if (r.stdout !== '') failures.push(`${what}: human usage error wrote to stdout: ${r.stdout}`);
            if (!/error/.test(r.stderr)) failures.push(`${what}: no error on stderr`);
          }
          void row;
        });
        expect(failures).toEqual([]);
        // The cases, by name: `--code --json` is not taken as the code; the value is named.
        const codeJson = await run(POSAGENT, ['enroll', '--code', '--json', ...unenrolled.flags]);
        expect(codeJson.code).toBe(2);
        expect(oneDocument(codeJson, 'enroll --code --json')).toMatchObject({
          error: { code: 'usage', message: expect.stringMatching(/--code needs a value/) },
        });
        const limit = await run(POSAGENT, ['queue', '--limit', 'abc', '--json', ...enrolled.dirs.flags]);
        expect(oneDocument(limit, 'queue --limit abc')).toMatchObject({
          error: { message: expect.stringMatching(/--limit must be an integer from 1 to 1000, got "abc"/) },
        });
        const timeout = await run(POSAGENT, ['diagnostics', '--timeout-ms', 'abc', ...enrolled.dirs.flags]);
        expect(timeout.code).toBe(2);
        expect(timeout.stderr).not.toMatch(/ETIMEDOUT/);
        // Nothing was enrolled by a refused enroll.
        expect(existsSync(join(unenrolled.stateDir, 'identity.json'))).toBe(false);
      } finally {
        if (daemon === 'up') await down();
      }
    });

    it(`posagent: valid commands exit with their contract's code, daemon ${daemon}, and --json is one document`, async () => {
      if (daemon === 'up') await up();
      try {
        const e = enrolled.dirs;
        const u = unenrolled;
        const rows: [string[], number, number][] = [
          // args, exit when enrolled, exit when not enrolled
          [['status'], 0, 3],
          [['config'], 0, 3],
          [['queue'], 0, 3],
          [['queue', 'list', '--state', 'stored', '--limit', '5'], 0, 3],
          [['queue', 'show', randomUUID()], 1, 3],
          [['queue', 'flush'], daemon === 'up' ? 0 : 4, 3],
          [['cert'], 0, 3],
          [['reprovision', ...SETTINGS(e)], -1, 3], // enrolled: not run here (it re-keys)
          [['decommission', ...SETTINGS(e)], daemon === 'up' ? 5 : -1, 3],
          [['diagnostics', '--timeout-ms', '2000', ...SETTINGS(e)], daemon === 'up' ? 0 : 1, 1],
          [['menu'], 2, 2],
        ];
        const failures: string[] = [];
        const cases = rows.flatMap(([args, whenEnrolled, whenNot]) =>
          [
            { dirs: e, want: whenEnrolled },
            { dirs: u, want: whenNot },
          ]
            .filter((c) => c.want >= 0)
            .map((c) => ({ args, ...c })),
        );
        await inBatches(cases, async ({ args, dirs, want }) => {
          const argv = [...args, '--json', ...dirs.flags];
          const r = await run(POSAGENT, argv);
          const what = `posagent ${argv.join(' ')} (daemon ${daemon})`;
          if (r.code !== want) failures.push(`${what}: exit ${r.code}, want ${want}\n${r.stdout}${r.stderr}`);
          const doc = oneDocument(r, what);
          // `status` answers with its document (enrolled: false) and exit 3; the others with the error.
          const notEnrolled =
            args[0] === 'status'
              ? (doc as { enrolled?: boolean }).enrolled === false
              : (doc as { error?: { code: string } }).error?.code === 'not_enrolled';
          if (want === 3 && !notEnrolled)
            failures.push(`${what}: ${JSON.stringify(doc)} should say not enrolled`);
        });
        expect(failures).toEqual([]);
      } finally {
        if (daemon === 'up') await down();
      }
    });
  }

  for (const serving of [true, false]) {
    it(`posagent-cloud: usage errors and bad values exit 2 before anything is created (a cloud ${serving ? 'serving' : 'not serving'} its data dir)`, async () => {
      const fresh = join(tempDir('cloud-cli'), 'never-created');
      const data = cloud.dataDir;
      const running = serving
        ? undefined
        : await (async () => {
            await cloud.stop();
            return true;
          })();
      try {
        const rows: string[][] = [
          ['serve', '--no-such-flag', '--data-dir', data],
          ['serve'],
          ['serve', '--data-dir', fresh, '--port', '99999'],
          ['serve', '--data-dir', fresh, '--port', 'http'],
          ['serve', '--data-dir', fresh, '--log-level', 'loud'],
          ['serve', '--data-dir', fresh, '--heartbeat-interval', '-5'],
          // 0 used to start a cloud no agent could say Hello to (its answer failed the schema)
          ['serve', '--data-dir', fresh, '--heartbeat-interval', '0'],
          ['serve', '--data-dir', fresh, '--ping-interval', '0'],
          ['serve', '--data-dir', fresh, '--ping-interval', '601'],
          ['release-key', '--no-such-flag', '--out', fresh],
          ['release-key', '--out', ''],
          ['release-sign'],
          ['release-sign', 'x.tgz', '--key', ''],
          ['no-such-command'],
        ];
        const failures: string[] = [];
        await inBatches(
          rows.flatMap((args) => [true, false].map((asJson) => ({ args, asJson }))),
          async ({ args, asJson }) => {
            const argv = [...args, ...(asJson ? ['--json'] : [])];
            const r = await run(POSAGENT_CLOUD, argv);
            const what = `posagent-cloud ${argv.join(' ')}`;
            if (r.code !== 2) failures.push(`${what}: exit ${r.code}, want 2\n${r.stdout}${r.stderr}`);
            if (asJson) {
              const doc = oneDocument(r, what) as { error?: { code: string } };
              if (doc.error?.code !== 'usage')
                failures.push(`${what}: ${JSON.stringify(doc)} is not a usage error`);
            } else if (r.stdout !== '') failures.push(`${what}: wrote to stdout: ${r.stdout}`);
          },
        );
        expect(failures).toEqual([]);
        expect(existsSync(fresh)).toBe(false);
        // Our message names what is allowed, not pino's.
        const level = await run(POSAGENT_CLOUD, ['serve', '--data-dir', fresh, '--log-level', 'loud']);
        expect(level.stderr).toMatch(/Allowed choices are trace, debug, info, warn, error/);
        const port = await run(POSAGENT_CLOUD, ['serve', '--data-dir', fresh, '--port', '99999', '--json']);
        expect(oneDocument(port, 'port')).toMatchObject({
          error: { message: expect.stringMatching(/--port must be an integer from 0 to 65535, got "99999"/) },
        });
        // A failure that is not a usage error: exit 1, one JSON document with --json.
        const sign = await run(POSAGENT_CLOUD, [
          'release-sign',
          join(fresh, 'x.tgz'),
          '--key',
          join(fresh, 'k.pem'),
          '--json',
        ]);
        expect(sign.code).toBe(1);
        expect(oneDocument(sign, 'release-sign')).toMatchObject({ error: { code: 'failed' } });
      } finally {
        if (running) cloud = await restartCloud(cloud);
      }
    });
  }
});
