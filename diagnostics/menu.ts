import { emitKeypressEvents } from 'node:readline';
import type { StatusDocument } from '../agent/status-document.js';
import { type DiagnosticsReport, formatReport } from './report.js';

/**
 * `posagent menu`: a keyboard-driven screen for the terminal's own display, a console or SSH.
 * The top is the Adyen device menu's three lines (Terminal API enabled, WebSocket enabled,
 * WebSocket connection); below, one key per task. Everything it shows comes from the same code
 * as the CLI (status, diagnostics, bundle), so the menu and `posagent diagnostics` never disagree.
 */
export interface MenuDeps {
  input: NodeJS.ReadStream;
  output: NodeJS.WritableStream;
  colour: boolean;
  status(): Promise<StatusDocument>;
  diagnose(): Promise<DiagnosticsReport>;
  /** Asks the daemon to reconnect now; returns what happened, for the screen. */
  reconnect(): Promise<string>;
  /** Writes a support bundle; returns its path. */
  bundle(): Promise<string>;
  /** The most recent problems, newest last. */
  lastErrors(): Promise<string[]>;
}

interface Item {
  key: string;
  label: string;
  run(): Promise<string>;
}

export async function runMenu(d: MenuDeps): Promise<void> {
  const paint = (code: string, s: string) => (d.colour ? `\u001b[${code}m${s}\u001b[0m` : s);
  const clear = () => d.output.write('\u001b[2J\u001b[H');
  const items: Item[] = [
    { key: '1', label: 'Run diagnostics', run: async () => formatReport(await d.diagnose(), d.colour) },
    {
      key: '2',
      label: 'Test the connection to the cloud',
      run: async () => {
        const r = await d.diagnose();
        const network = r.checks.filter((c) => c.group === 'network' || c.id === 'clock');
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
          return `Enrolled as "${s.name}" (${s.terminalId}) at location ${s.locationId}\nCloud: ${s.cloudUrl}\nCertificate valid until ${s.certificate.notAfter} (${s.certificate.daysLeft} days left)`;
        if (s.pairing)
          return `Not enrolled yet. Pairing code to activate in the dashboard:\n\n    ${paint('1', s.pairing.code)}\n\nvalid until ${s.pairing.expiresAt}`;
        return 'Not enrolled. Enroll with: posagent enroll --code CODE (or --qr, --pair, --auto)';
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
  ];

  const home = async () => {
    const s = await d.status();
    const on = (b: boolean) => (b ? paint('32', 'enabled') : paint('31', 'disabled'));
    const link =
      s.link.state === 'online'
        ? paint('32', 'connected')
        : paint('31', s.link.state === 'connecting' ? 'connecting' : 'not connected');
    clear();
    d.output.write(
      [
        paint(
          '1',
          `posagent ${s.softwareVersion} — ${s.enrolled ? `${s.name} (${s.terminalId})` : 'not enrolled'}`,
        ),
        '',
        `  Terminal API           ${on(s.daemon === 'running')}${s.daemon === 'running' ? '' : '  (daemon stopped)'}`,
        `  WebSocket              ${on(s.enrolled)}`,
        `  WebSocket connection   ${link}${s.link.reason ? `  (${s.link.reason})` : ''}`,
        `  Last heartbeat         ${s.link.lastHeartbeatAt ?? 'never'}`,
        `  Locked                 ${s.locked ? paint('31', 'yes') : 'no'}`,
        '',
        ...items.map((i) => `  ${paint('1', i.key)}  ${i.label}`),
        `  ${paint('1', 'q')}  Quit`,
        '',
        'Choose: ',
      ].join('\n'),
    );
  };

  emitKeypressEvents(d.input);
  if (d.input.isTTY) d.input.setRawMode(true);
  d.input.resume();
  await home();
  await new Promise<void>((resolve) => {
    let screen: 'home' | 'result' | 'busy' = 'home';
    const done = () => {
      d.input.off('keypress', onKey);
      if (d.input.isTTY) d.input.setRawMode(false);
      d.input.pause();
      d.output.write('\n');
      resolve();
    };
    const onKey = (str: string | undefined, key: { name?: string; ctrl?: boolean } | undefined) => {
      if (key?.ctrl && key.name === 'c') return done();
      if (screen === 'busy') return;
      if (screen === 'result') {
        screen = 'home';
        void home();
        return;
      }
      if (str === 'q' || key?.name === 'escape') return done();
      const item = items.find((i) => i.key === str);
      if (!item) return;
      screen = 'busy';
      clear();
      d.output.write(`${paint('1', item.label)}\n\nworking…\n`);
      void item
        .run()
        .catch((err: Error) => `failed: ${err.message}`)
        .then((text) => {
          clear();
          d.output.write(`${paint('1', item.label)}\n\n${text}\n\nPress any key to go back.`);
          screen = 'result';
        });
    };
    d.input.on('keypress', onKey);
  });
}
