import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AgentDirs,
  agentDirs,
  type Cloud,
  enrollAgent,
  newEnrollmentCode,
  POSAGENT,
  type Proc,
  restartCloud,
  startAgent,
  startCloud,
  waitForLink,
} from '../support/processes.js';
import { waitFor } from '../support/wait-for.js';

/**
 * Issues 8 and 18.5: `posagent menu` in a real pseudo-terminal of 40×20 — util-linux `script`
 * (in every Debian: bsdutils is essential) allocates it; keys go in on its stdin, the screen comes
 * back on its stdout. What the menu says it does, it does: reconnect, last errors after cloud
 * restarts, wrapping and paging at 40×20, enrolling with a typed code, feedback on unknown keys.
 */
const COLUMNS = 40;
const ROWS = 20;
const CLEAR = '\u001b[2J\u001b[H';

interface Menu {
  child: ChildProcess;
  /** The last screen drawn (after the last clear), without carriage returns. */
  screen(): string;
  key(k: string): void;
  exited: Promise<number | null>;
}

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

function startMenu(dirs: AgentDirs, settings: string): Menu {
  const cmd = [process.execPath, POSAGENT, 'menu', ...dirs.flags, '--settings', settings]
    .map(quote)
    .join(' ');
  const child = spawn('script', ['-qfec', `stty cols ${COLUMNS} rows ${ROWS}; exec ${cmd}`, '/dev/null'], {
    env: { ...process.env, NO_COLOR: '1' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.on('error', (err) => {
    out += `\n[script failed to start: ${err.message} — install util-linux's script (bsdutils)]`;
  });
  return {
    child,
    screen: () => out.slice(out.lastIndexOf(CLEAR) + CLEAR.length).replace(/\r/g, ''),
    key: (k) => child.stdin!.write(k),
    exited: new Promise((r) => child.on('exit', (code) => r(code))),
  };
}

const waitScreen = (m: Menu, text: RegExp, what: string) =>
  waitFor(() => {
    const s = m.screen();
    return text.test(s) ? s : undefined;
  }, what);

/** Every line of the screen fits 40 columns, and there are at most 20. */
function fits(screen: string): void {
  const lines = screen.replace(/\n$/, '').split('\n');
  expect(lines.length, screen).toBeLessThanOrEqual(ROWS);
  for (const l of lines) expect(l.length, `"${l}" in\n${screen}`).toBeLessThanOrEqual(COLUMNS);
}

describe('posagent menu (a 40×20 pseudo-terminal)', () => {
  let cloud: Cloud;
  let a: Awaited<ReturnType<typeof enrollAgent>>;
  let agent: Proc;
  const settingsOf = (d: AgentDirs) => join(d.stateDir, '..', 'agent.json');

  beforeAll(async () => {
    cloud = await startCloud();
    a = await enrollAgent(cloud);
    agent = startAgent(a.dirs);
    await waitForLink(a.dirs);
  });
  afterAll(async () => {
    agent?.child.kill('SIGKILL');
    await cloud?.stop();
  });

  it('home, reconnect while online, last errors after two cloud restarts, diagnostics wrapped and paged, unknown keys, quit', async () => {
    // Two cloud restarts: the link goes down and comes back each time.
    for (let i = 0; i < 2; i++) {
      await cloud.stop();
      await waitForLink(a.dirs, (s) => s !== 'online');
      cloud = await restartCloud(cloud);
      await waitForLink(a.dirs);
    }
    const m = startMenu(a.dirs, settingsOf(a.dirs));
    try {
      const home = await waitScreen(m, /Choose:/, 'the home screen');
      fits(home);
      expect(home).toMatch(/Terminal API\s+enabled/);
      expect(home).toMatch(/WebSocket\s+enabled/);
      expect(home).toMatch(/WebSocket connection\s+connected/);
      expect(home).toMatch(/7 {2}Enroll with a code/);

      m.key('x');
      fits(await waitScreen(m, /Unknown key "x": choose 1–7 or q\./, 'feedback for an unknown key'));

      m.key('3');
      const reconnect = await waitScreen(m, /Press any key to go back/, 'the reconnect screen');
      fits(reconnect);
      expect(reconnect.replace(/\s+/g, ' ')).toMatch(/Already connected to the cloud \(online since/);
      m.key(' ');
      await waitScreen(m, /Choose:/, 'home again');

      m.key('6');
      const errors = await waitScreen(m, /Press any key to go back|space: more/, 'the last errors');
      fits(errors);
      // Both restarts are there (the cloud closes links with 1012 when it stops).
      expect(errors.replace(/\s+/g, ' ')).toMatch(/link: offline: cloud closed the link \(1012/);
      expect(errors).not.toMatch(/No recent errors/);
      m.key('q');
      await waitScreen(m, /Choose:/, 'home after the errors');

      // The diagnostics report is longer than 20 rows at 40 columns: pages, each fitting, words whole.
      m.key('1');
      const first = await waitScreen(m, /— 1\/\d+ — space: more/, 'the first page of the report');
      const pages = Number(/— 1\/(\d+) —/.exec(first)![1]);
      expect(pages).toBeGreaterThan(1);
      const seen = [first];
      fits(first);
      for (let p = 2; p <= pages; p++) {
        m.key(' ');
        const page = await waitScreen(m, new RegExp(`— ${p}/${pages} —`), `page ${p}`);
        fits(page);
        seen.push(page);
      }
      // The report's lines, without each page's title and footer: a detail continued on the next page joins up.
      const text = seen
        .map((page) => page.replace(/\n$/, '').split('\n').slice(2, -1).join('\n'))
        .join('\n')
        .replace(/\s+/g, ' ');
      expect(text).toMatch(/PASS tls the cloud's certificate chains to the pinned fleet CA/);
      expect(text).toMatch(/\d+ passed, \d+ warnings, 0 failed/);
      m.key('b'); // back a page
      await waitScreen(m, new RegExp(`— ${pages - 1}/${pages} —`), 'the page before');
      m.key('q');
      await waitScreen(m, /Choose:/, 'home after the report');

      m.key('q');
      expect(await m.exited).toBe(0);
    } finally {
      m.child.kill('SIGKILL');
    }
  });

  it('"Reconnect now" while the link waits out a long backoff: it reconnects, and says so', async () => {
    const b = await enrollAgent(cloud);
    const slow = startAgent(b.dirs, [], {
      POSAGENT_RECONNECT_BASE_MS: '120000',
      POSAGENT_RECONNECT_CAP_MS: '120000',
      POSAGENT_RESTART_SPREAD_MS: '120000',
    });
    const m = startMenu(b.dirs, settingsOf(b.dirs));
    try {
      await waitForLink(b.dirs);
      await cloud.stop();
      await waitForLink(b.dirs, (s) => s !== 'online');
      cloud = await restartCloud(cloud); // the agent would wait up to two minutes before it tried
      await waitScreen(m, /WebSocket connection\s+not connected/, 'home, offline');
      m.key('3');
      const r = await waitScreen(m, /Press any key to go back/, 'the reconnect result');
      fits(r);
      expect(r.replace(/\s+/g, ' ')).toMatch(/Reconnected: the link is online/);
      m.key(' ');
      await waitScreen(m, /WebSocket connection\s+connected/, 'home, online again');
      m.key('q');
      expect(await m.exited).toBe(0);
    } finally {
      m.child.kill('SIGKILL');
      slow.child.kill('SIGKILL');
    }
  });

  it('enrolls with a code typed on the terminal; the waiting daemon goes online with it', async () => {
    const dirs = agentDirs();
    const settings = settingsOf(dirs);
    const base = JSON.parse(readFileSync(settings, 'utf8')) as object;
    writeFileSync(settings, JSON.stringify({ ...base, cloudUrl: cloud.url, fleetCaFile: cloud.caFile }));
    const daemon = startAgent(dirs);
    const m = startMenu(dirs, settings);
    try {
      const home = await waitScreen(m, /Choose:/, 'the home screen');
      fits(home);
      expect(home).toMatch(/not enrolled/);
      const { code } = await newEnrollmentCode(cloud, 'Till 7');
      m.key('7');
      await waitScreen(m, /Code: _/, 'the code prompt');
      m.key('!');
      await waitScreen(m, /cannot be part of a code/, 'feedback for a character no code has');
      for (const ch of code.toLowerCase()) m.key(ch); // typed as it comes; the menu upper-cases
      await waitScreen(m, new RegExp(`Code: ${code}_`), 'the code typed');
      m.key('\r');
      const done = await waitScreen(m, /Press any key to go back/, 'the enrollment result');
      fits(done);
      expect(done.replace(/\s+/g, ' ')).toMatch(/Enrolled as "Till 7"/);
      await waitForLink(dirs);
      m.key(' ');
      await waitScreen(m, /WebSocket connection\s+connected/, 'home, online');
      m.key('7');
      expect((await waitScreen(m, /Press any key/, 'enroll again')).replace(/\s+/g, ' ')).toMatch(
        /Already enrolled/,
      );
      m.key(' ');
      await waitScreen(m, /Choose:/, 'home');
      m.key('q');
      expect(await m.exited).toBe(0);
    } finally {
      m.child.kill('SIGKILL');
      daemon.child.kill('SIGKILL');
    }
  });
});
