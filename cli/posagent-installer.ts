#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { guardAfterStop, guardBeforeStart } from '../release/boot-guard.js';
import { Installer } from '../release/installer.js';

/**
 * `posagent-installer` — the root-side of software updates, installed outside every release
 * (/usr/lib/posagent/posagent-installer.js, one self-contained file):
 *
 *   stage | activate   verify and unpack a release the agent downloaded / switch to it (posagent-update@.service)
 *   guard              before each start of posagent.service: count trial starts, roll back (ExecStartPre=+)
 *   stopped            after each stop: remember how it ended (ExecStopPost=+)
 */
const USAGE = `usage: posagent-installer stage|activate|guard|stopped [--install-dir DIR] [--state-dir DIR] [--release-key PEM] [--max-trial-starts N]
  stage      verify the downloaded release (root-owned key) and unpack it beside the running one
  activate   record the trial for the boot guard and switch /opt/posagent/current to it
  guard      before a start: count a trial's starts; roll it back when it keeps failing or outlives its window
  stopped    after a stop: record how it ended ($SERVICE_RESULT, $EXIT_CODE, $EXIT_STATUS)`;

function main(): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse();
  } catch (err) {
    process.stderr.write(`posagent-installer: ${(err as Error).message}\n${USAGE}\n`);
    return Promise.resolve(2);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return Promise.resolve(0);
  }
  const step = positionals[0];
  const layout = { installDir: values['install-dir'], stateDir: values['state-dir'] };
  const log = (m: string) => process.stderr.write(`posagent-installer ${step}: ${m}\n`);
  const now = Date.now;
  switch (step) {
    case 'stage':
    case 'activate': {
      const max = Number(values['max-trial-starts']);
      if (!Number.isInteger(max) || max < 1) {
        process.stderr.write(`posagent-installer: --max-trial-starts must be a positive integer\n`);
        return Promise.resolve(2);
      }
      return new Installer({
        layout,
        releaseKeyFile: values['release-key'],
        nodePath: process.execPath,
        maxTrialStarts: max,
        now,
        log,
      }).run(step);
    }
    case 'guard':
      // Never keep the service from starting: a guard that cannot decide logs and lets it start.
      return guardBeforeStart({ layout, now, log }).then(
        () => 0,
        (err: Error) => {
          log(`failed, starting as is: ${err.message}`);
          return 0;
        },
      );
    case 'stopped': {
      const e = process.env;
      const ended = [e.SERVICE_RESULT, e.EXIT_CODE && `${e.EXIT_CODE}=${e.EXIT_STATUS ?? ''}`]
        .filter(Boolean)
        .join(', ');
      return guardAfterStop({ layout, now, log }, ended).then(
        () => 0,
        (err: Error) => {
          log(`failed: ${err.message}`);
          return 0;
        },
      );
    }
    default:
      process.stderr.write(
        `posagent-installer: ${step ? `unknown step "${step}"` : 'no step given'}\n${USAGE}\n`,
      );
      return Promise.resolve(2);
  }
}

function parse() {
  return parseArgs({
    allowPositionals: true,
    options: {
      'install-dir': { type: 'string', default: '/opt/posagent' },
      'state-dir': { type: 'string', default: '/var/lib/posagent' },
      'release-key': { type: 'string', default: '/etc/posagent/release-key.pem' },
      'max-trial-starts': { type: 'string', default: '3' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

void main().then((code) => process.exit(code));
