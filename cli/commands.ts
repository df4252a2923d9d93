import { Argument, Command, Option } from 'commander';
import { TRANSACTION_STATES } from '../protocol/transactions.js';
import { httpsUrl, integer, jsonRequested, quietWhenJson, text, usageError } from './arguments.js';
import type { DiagnosticsOptions } from './diagnostics-command.js';
import type { EnrollOptions } from './enroll-command.js';
import { CommandError, createOutput, ExitCode, type Output } from './output.js';
import type { RunOptions } from './run-command.js';
import { readSoftwareVersion } from './software-version.js';

/**
 * The `posagent` commands — thin front-ends: parse, call, print. Command modules are imported
 * lazily so that no command loads what only enrollment or the daemon need.
 */
interface CommonOptions {
  json?: boolean;
  stateDir?: string;
  runtimeDir?: string;
}

function common(cmd: Command): Command {
  return cmd
    .option('--json', 'print one JSON document on stdout and nothing else there')
    .option(
      '--state-dir <dir>',
      'state dir (default: $POSAGENT_STATE_DIR, $STATE_DIRECTORY, /var/lib/posagent)',
      text('--state-dir'),
    )
    .option(
      '--runtime-dir <dir>',
      'runtime dir holding api.sock (default: $POSAGENT_RUNTIME_DIR, $RUNTIME_DIRECTORY, /run/posagent)',
      text('--runtime-dir'),
    );
}

const SETTINGS_HELP = 'device settings file (JSON)';
const settingsOption = () =>
  new Option('--settings <file>', SETTINGS_HELP)
    .argParser(text('--settings'))
    .default('/etc/posagent/agent.json');

async function runCommand(
  opts: CommonOptions,
  body: (out: Output) => Promise<number | undefined>,
): Promise<void> {
  const out = createOutput(opts.json === true);
  try {
    process.exitCode = (await body(out)) ?? ExitCode.ok;
  } catch (err) {
    const e =
      err instanceof CommandError ? err : new CommandError('failed', (err as Error).message ?? String(err));
    out.error(e);
    process.exitCode = e.exitCode;
  }
}

const version = readSoftwareVersion();
const json = jsonRequested(process.argv.slice(2));
const program = quietWhenJson(
  new Command('posagent')
    .description('posagent — the agent of a payment terminal and its link to the fleet cloud')
    .version(version, '-V, --version')
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)'),
  json,
);

common(
  program
    .command('enroll')
    .description(
      'enroll this terminal with the fleet cloud (makes the key pair here; the private key never leaves the device)',
    )
    .option(
      '--cloud <url>',
      'the cloud base URL, https://… (default: cloudUrl in the device settings)',
      httpsUrl('--cloud'),
    )
    .option(
      '--ca-file <pem>',
      'the fleet CA to trust the cloud with (default: fleetCaFile in the device settings)',
      text('--ca-file'),
    )
    .option(
      '--code <code>',
      'enroll with the enrollment code shown in the cloud (e.g. ABCD-EFGH)',
      text('--code'),
    )
    .option(
      '--qr <payload>',
      'enroll with a scanned QR payload (posagent://enroll?…); no --cloud or --ca-file needed',
      text('--qr'),
    )
    .option('--qr-image <png>', 'enroll with the QR code in a PNG image', text('--qr-image'))
    .option('--pair', 'show an activation code and wait until it is activated in the cloud')
    .option(
      '--auto',
      "zero-touch: enroll by this device's serial, pre-registered in the cloud, proven with its factory identity",
    )
    .option(
      '--serial <serial>',
      'serial number to present (default: serialNumber in the device settings, the factory certificate, the hardware)',
      text('--serial'),
    )
    .option(
      '--factory-key <pem>',
      'factory identity key (default: factoryKeyFile in the device settings)',
      text('--factory-key'),
    )
    .option(
      '--factory-cert <pem>',
      'factory identity certificate (default: factoryCertFile in the device settings)',
      text('--factory-cert'),
    )
    .addOption(settingsOption())
    .option('--force', 'replace an existing identity'),
).action(async (opts: EnrollOptions & { json?: boolean }) =>
  runCommand(opts, async (out) => (await import('./enroll-command.js')).enrollCommand(opts, out, version)),
);

common(
  program
    .command('run')
    .description('run the daemon in the foreground (systemd runs this)')
    .addOption(settingsOption())
    .option('--cloud-url <url>', 'override the cloud URL recorded at enrollment', httpsUrl('--cloud-url'))
    .option(
      '--reboot-command <cmd>',
      'shell command that reboots the device (default: systemctl reboot)',
      text('--reboot-command'),
    )
    .option(
      '--boot-id-file <file>',
      'where the boot id is read (default: /proc/sys/kernel/random/boot_id)',
      text('--boot-id-file'),
    )
    .option(
      '--install-dir <dir>',
      'where releases and the current link live (default: /opt/posagent)',
      text('--install-dir'),
    )
    .addOption(
      new Option('--log-level <level>', 'log level').choices([
        'trace',
        'debug',
        'info',
        'warn',
        'error',
        'fatal',
      ]),
    ),
).action(async (opts: CommonOptions & RunOptions) =>
  runCommand(opts, async (out) => (await import('./run-command.js')).runCommand(opts, out, version)),
);

common(
  program
    .command('status')
    .description('enrollment, daemon, cloud link, certificate, config and queue at a glance'),
).action(async (opts: CommonOptions) =>
  runCommand(opts, async (out) => (await import('./status-command.js')).statusCommand(opts, out, version)),
);

common(
  program
    .command('config')
    .description('the applied configuration {version, config}; why the last push was refused, if it was'),
).action(async (opts: CommonOptions) =>
  runCommand(opts, async (out) => (await import('./config-command.js')).configCommand(opts, out)),
);

common(
  program
    .command('queue')
    .description(
      'the transaction queue: list (default), show ID, flush (forward now, skipping the backoff wait)',
    )
    .addArgument(new Argument('[action]', 'what to do').choices(['list', 'show', 'flush']).default('list'))
    .argument('[id]', 'transaction id for show')
    .addOption(new Option('--state <state>', 'list only this state').choices(TRANSACTION_STATES))
    .option('--limit <n>', 'list at most n (1–1000), newest first', integer('--limit', 1, 1000), 50),
).action(
  async (action: string, id: string | undefined, opts: CommonOptions & { state?: string; limit: number }) =>
    runCommand(opts, async (out) => (await import('./queue-command.js')).queueCommand(action, id, opts, out)),
);

common(
  program
    .command('cert')
    .description(
      'the client certificate {subject, serialNumber, notBefore, notAfter, daysLeft, fingerprint}; --renew renews it now',
    )
    .option('--renew', 'renew now with a new key (through the daemon when it runs, directly otherwise)')
    .addOption(settingsOption()),
).action(async (opts: CommonOptions & { renew?: boolean; settings?: string }) =>
  runCommand(opts, async (out) => (await import('./lifecycle-command.js')).certCommand(opts, out)),
);

common(
  program
    .command('reprovision')
    .description('new key and certificate for this terminal: same terminal id, config and queue')
    .addOption(settingsOption()),
).action(async (opts: CommonOptions & { settings?: string }) =>
  runCommand(opts, async (out) => (await import('./lifecycle-command.js')).reprovisionCommand(opts, out)),
);

common(
  program
    .command('decommission')
    .description('wipe the identity and the queue (tells the cloud); refuses while transactions are unsent')
    .option('--force', 'decommission even with unsent transactions (they are lost)')
    .addOption(settingsOption()),
).action(async (opts: CommonOptions & { force?: boolean; settings?: string }) =>
  runCommand(opts, async (out) => (await import('./lifecycle-command.js')).decommissionCommand(opts, out)),
);

common(
  program
    .command('diagnostics')
    .description(
      'check identity, certificate, clock, DNS, TCP, TLS, WebSocket, daemon, link, config, queue, store, disk and the local API; exit 1 if any fails (works with the daemon down)',
    )
    .option(
      '--bundle <file>',
      'also write a support bundle (.tar.gz) for escalation: no keys, tokens or card data',
      text('--bundle'),
    )
    .option(
      '--timeout-ms <ms>',
      'give up on each network probe after this long (100–600000)',
      integer('--timeout-ms', 100, 600_000),
      5000,
    )
    .addOption(settingsOption()),
).action(async (opts: CommonOptions & DiagnosticsOptions) =>
  runCommand(opts, async (out) =>
    (await import('./diagnostics-command.js')).diagnosticsCommand(opts, out, version),
  ),
);

common(
  program
    .command('menu')
    .description('the interactive diagnostics menu for the terminal screen and keyboard (or SSH)')
    .addOption(settingsOption()),
).action(async (opts: CommonOptions & { settings?: string }) =>
  runCommand(opts, async (out) => (await import('./menu-command.js')).menuCommand(opts, out, version)),
);

try {
  await program.parseAsync();
} catch (err) {
  const usage = usageError(err);
  // --help and --version exit 0; anything commander rejects is a usage error (exit 2), and with
  // --json it is one JSON error document on stdout, like every other failure.
  if (usage) {
    if (json) createOutput(true).error(new CommandError(usage.code, usage.message, ExitCode.usage));
    process.exitCode = ExitCode.usage;
  } else if ((err as { code?: string }).code?.startsWith('commander.')) process.exitCode = ExitCode.ok;
  else throw err;
}
