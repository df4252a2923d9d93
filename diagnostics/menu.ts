import { emitKeypressEvents } from 'node:readline';
import type { StatusDocument } from '../agent/status/status-document.js';
import { layoutScreen, type ScreenSize, screenSafe, visibleLength } from './menu-screen.js';
import { type DiagnosticsReport, formatReport } from './report.js';

/**
 * `posagent menu`: a keyboard-driven screen for the terminal's own display (40×20 and up), a
 * console or SSH. The top is the Adyen device menu's three lines (Terminal API enabled, WebSocket
 * enabled, WebSocket connection); below, one key per task. Text wraps on words and pages to the
 * screen (diagnostics/menu-screen.ts). Everything it shows comes from the same code as the CLI
 * (status, diagnostics, bundle, enrollment), so the menu and `posagent diagnostics` never disagree.
 */
export interface MenuDeps {
  input: NodeJS.ReadStream;
  output: NodeJS.WritableStream & { on(event: 'resize', listener: () => void): unknown };
  colour: boolean;
  /** Columns and rows of the screen now. */
  size(): ScreenSize;
  status(): Promise<StatusDocument>;
  diagnose(): Promise<DiagnosticsReport>;
  /** Reconnects the daemon's link if it is not online, or says it already is; returns what happened. */
  reconnect(): Promise<string>;
  /** Writes a support bundle; returns its path. */
  bundle(): Promise<string>;
  /** The most recent problems, newest last. */
  lastErrors(): Promise<string[]>;
  /** Enrolls with a typed code; returns what to show (throws with the reason when it fails). */
  enroll(code: string): Promise<string>;
}

interface Item {
  key: string;
  label: string;
  run(): Promise<string>;
}

type Key = { name?: string; ctrl?: boolean; sequence?: string } | undefined;
type Screen =
  | { kind: 'home'; page: number; feedback: string | null }
  | { kind: 'busy'; title: string }
  | { kind: 'result'; title: string; text: string; page: number; pages: number }
  | { kind: 'prompt'; title: string; typed: string; feedback: string | null };

const HOME_REFRESH_MS = 2000;
const NEXT = new Set(['space', 'n', 'pagedown', 'down', 'return', 'enter']);
const PREVIOUS = new Set(['b', 'p', 'pageup', 'up']);

function ago(iso: string | null, nowMs: number): string {
  if (!iso) return 'never';
  const s = Math.max(0, Math.round((nowMs - Date.parse(iso)) / 1000));
  return s < 120
    ? `${s} s ago`
    : s < 7200
      ? `${Math.round(s / 60)} min ago`
      : `${Math.round(s / 3600)} h ago`;
}

export async function runMenu(d: MenuDeps): Promise<void> {
  const paint = (code: string, s: string) => (d.colour ? `\u001b[${code}m${s}\u001b[0m` : s);
  const items: Item[] = [
    { key: '1', label: 'Run diagnostics', run: async () => formatReport(await d.diagnose(), d.colour) },
    {
      key: '2',
      label: 'Test the connection to the cloud',
      run: async () => {
        const r = await d.diagnose();
        const network = r.checks.filter((c) => c.group === 'network' || c.id === 'clock');
        if (network.length === 0)
          return 'No cloud to test: this terminal is not enrolled and no cloud URL is configured (cloudUrl in /etc/posagent/agent.json).';
        const fails = network.filter((c) => c.status === 'fail').length;
        return formatReport(
          { ...r, checks: network, summary: { pass: network.length - fails, warn: 0, fail: fails } },
          d.colour,
        );
      },
    },
    { key: '3', label: 'Reconnect now', run: () => d.reconnect() },
    {
      key: '4',
      label: 'Enrollment and pairing',
      run: async () => {
        const s = await d.status();
        if (s.enrolled)
          return `Enrolled as "${s.name}" (${s.terminalId}) at ${s.locationName ? `store "${s.locationName}" (${s.locationId})` : `location ${s.locationId}`}${s.organizationSlug ? `, organization ${s.organizationSlug}` : ''}\nCloud: ${s.cloudUrl}\nCertificate valid until ${s.certificate.notAfter} (${s.certificate.daysLeft} days left)`;
        if (s.pairing)
          return `Not enrolled yet. Pairing code to activate in the dashboard:\n\n    ${paint('1', s.pairing.code)}\n\nvalid until ${s.pairing.expiresAt}`;
        return 'Not enrolled. Enroll with a code from the dashboard: key 7 here, or posagent enroll --code CODE (or --qr, --pair, --auto).';
      },
    },
    {
      key: '5',
      label: 'Export a support bundle',
      run: async () => `Support bundle written to ${await d.bundle()}`,
    },
    {
      key: '6',
      label: 'Last errors',
      run: async () => {
        const errors = await d.lastErrors();
        return errors.length === 0 ? 'No recent errors.' : errors.join('\n');
      },
    },
    { key: '7', label: 'Enroll with a code', run: async () => '' }, // a prompt first: see below
  ];
  const keys = `${items[0]!.key}–${items[items.length - 1]!.key}`;

  let screen: Screen = { kind: 'home', page: 0, feedback: null };
  let lastStatus: StatusDocument | null = null;
  let closed = false;
  const draw = (text: string) => {
    if (!closed) d.output.write(`\u001b[2J\u001b[H${screenSafe(text)}`);
  };

  const homeBody = (s: StatusDocument): { title: string; body: string } => {
    const size = d.size();
    const on = (b: boolean) => (b ? paint('32', 'enabled') : paint('31', 'disabled'));
    const link =
      s.link.state === 'online'
        ? paint('32', 'connected')
        : paint('31', s.link.state === 'connecting' ? 'connecting' : 'not connected');
    const row = (label: string, value: string) => `  ${label.padEnd(21)}${value}`;
    // The link's reason is cut to what is left of one line: the whole of it is in Last errors.
    const room = Math.max(0, size.columns - visibleLength(row('WebSocket connection', link)) - 3);
    const reason =
      s.link.reason && room > 8
        ? ` (${s.link.reason.length > room ? `${s.link.reason.slice(0, room - 1)}…` : s.link.reason})`
        : '';
    return {
      title: paint(
        '1',
        `posagent ${s.softwareVersion} — ${s.enrolled ? `${s.name} (${s.terminalId})` : 'not enrolled'}`,
      ),
      body: [
        row(
          'Terminal API',
          `${on(s.daemon === 'running')}${s.daemon === 'running' ? '' : ' (daemon stopped)'}`,
        ),
        row('WebSocket', on(s.enrolled)),
        row('WebSocket connection', `${link}${reason}`),
        row('Last heartbeat', ago(s.link.lastHeartbeatAt, Date.now())),
        row('Locked', s.locked ? paint('31', 'yes') : 'no'),
        '',
        ...items.map((i) => `  ${paint('1', i.key)}  ${i.label}`),
        `  ${paint('1', 'q')}  Quit`,
      ].join('\n'),
    };
  };

  const render = async () => {
    const size = d.size();
    switch (screen.kind) {
      case 'home': {
        const s = await d.status().catch(() => lastStatus);
        if (!s) return draw('posagent menu\n\nthe status cannot be read\n\nq: quit');
        lastStatus = s;
        if (screen.kind !== 'home') return; // a key moved on while the status was read
        const { title, body } = homeBody(s);
        const current = screen;
        const laid = layoutScreen(
          size,
          title,
          body,
          (p, n) =>
            `${current.feedback ? `${current.feedback}\n` : ''}${p < n - 1 ? 'space: more · ' : ''}Choose: `,
          current.page,
        );
        current.page = laid.page;
        return draw(laid.text);
      }
      case 'busy':
        return draw(layoutScreen(size, paint('1', screen.title), 'working…', () => '').text);
      case 'prompt':
        return draw(
          layoutScreen(
            size,
            paint('1', screen.title),
            `Type the enrollment code shown in the dashboard (e.g. ABCD-EFGH), then Enter.\n\nCode: ${screen.typed}_`,
            () =>
              `${screen.kind === 'prompt' && screen.feedback ? `${screen.feedback}\n` : ''}Enter: enroll · Esc: back`,
          ).text,
        );
      case 'result': {
        const current = screen;
        const laid = layoutScreen(
          size,
          paint('1', current.title),
          current.text,
          (p, n) =>
            n === 1
              ? 'Press any key to go back.'
              : p < n - 1
                ? `— ${p + 1}/${n} — space: more · b: back · q: menu`
                : `— ${n}/${n} — b: back · any other key: menu`,
          current.page,
        );
        current.page = laid.page;
        current.pages = laid.pages;
        return draw(laid.text);
      }
    }
  };

  const runTask = (title: string, task: () => Promise<string>) => {
    screen = { kind: 'busy', title };
    void render();
    void task()
      .catch((err: Error) => `failed: ${err.message}`)
      .then((text) => {
        screen = { kind: 'result', title, text, page: 0, pages: 1 };
        void render();
      });
  };

  const onHomeKey = (str: string | undefined, key: Key) => {
    if (screen.kind !== 'home') return;
    if (key?.name === 'space' || key?.name === 'pagedown') {
      screen.page++;
      screen.feedback = null;
      return void render();
    }
    const item = items.find((i) => i.key === str);
    if (!item) {
      const shown = key?.name && key.name.length > 1 ? key.name : (str ?? key?.name ?? '?');
      screen.feedback = `Unknown key "${shown}": choose ${keys} or q.`;
      return void render();
    }
    if (item.key === '7') {
      if (lastStatus?.enrolled) {
        screen = {
          kind: 'result',
          title: item.label,
          text: `Already enrolled as "${lastStatus.name}" (${lastStatus.terminalId}). To enroll this device again (a replacement code), use: posagent enroll --force --code CODE`,
          page: 0,
          pages: 1,
        };
        return void render();
      }
      screen = { kind: 'prompt', title: item.label, typed: '', feedback: null };
      return void render();
    }
    runTask(item.label, item.run);
  };

  const onPromptKey = (str: string | undefined, key: Key) => {
    if (screen.kind !== 'prompt') return;
    if (key?.name === 'escape') {
      screen = { kind: 'home', page: 0, feedback: null };
      return void render();
    }
    if (key?.name === 'backspace') {
      screen.typed = screen.typed.slice(0, -1);
      return void render();
    }
    if (key?.name === 'return' || key?.name === 'enter') {
      const code = screen.typed.trim();
      if (!code) {
        screen.feedback = 'Type the code first.';
        return void render();
      }
      return runTask(screen.title, () => d.enroll(code));
    }
    if (str && /^[A-Za-z0-9-]$/.test(str) && screen.typed.length < 32) {
      screen.typed += str.toUpperCase();
      screen.feedback = null;
    } else screen.feedback = str ? `"${str}" cannot be part of a code: letters, digits and "-".` : null;
    void render();
  };

  const onResultKey = (key: Key) => {
    if (screen.kind !== 'result') return;
    if (key?.name && NEXT.has(key.name) && screen.page < screen.pages - 1) screen.page++;
    else if (key?.name && PREVIOUS.has(key.name) && screen.page > 0) screen.page--;
    else screen = { kind: 'home', page: 0, feedback: null };
    void render();
  };

  emitKeypressEvents(d.input);
  if (d.input.isTTY) d.input.setRawMode(true);
  d.input.resume();
  const onResize = () => void render();
  d.output.on('resize', onResize);
  // The home screen follows the link: redrawn every 2 s while it is shown.
  const refresh = setInterval(() => {
    if (screen.kind === 'home') void render();
  }, HOME_REFRESH_MS);
  refresh.unref();
  await render();
  await new Promise<void>((resolve) => {
    const done = () => {
      closed = true;
      clearInterval(refresh);
      d.input.off('keypress', onKey);
      (d.output as NodeJS.EventEmitter).off?.('resize', onResize);
      if (d.input.isTTY) d.input.setRawMode(false);
      d.input.pause();
      d.output.write('\n');
      resolve();
    };
    const onKey = (str: string | undefined, key: Key) => {
      if (key?.ctrl && key.name === 'c') return done();
      switch (screen.kind) {
        case 'busy':
          return;
        case 'result':
          return onResultKey(key);
        case 'prompt':
          return onPromptKey(str, key);
        case 'home':
          if (str === 'q' || key?.name === 'escape') return done();
          return onHomeKey(str, key);
      }
    };
    d.input.on('keypress', onKey);
  });
}
