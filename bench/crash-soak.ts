import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { prepareCrashLoopTerminal, runCrashLoop } from '../harness/crash-loop.js';
import { ROOT, startCloud } from '../harness/local-fleet.js';

/**
 * `npm run soak -- --cycles N`: the crash loop of the e2e test, longer. A POS-app client submits
 * through the local API while the agent is SIGKILLed at random points and the cloud drains.
 * Prints cycles, submitted, acknowledged, lost, duplicated; writes bench/soak-results.json.
 */
const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const cycles = arg('--cycles', 1000);
/** `--agent-only`: only the agent is killed (no cloud kills, configs or actions). */
const chaos = !process.argv.includes('--agent-only');

async function main(): Promise<void> {
  const started = Date.now();
  let cloud = await startCloud(['--heartbeat-interval', '30']);
  try {
    const a = await prepareCrashLoopTerminal(cloud);
    const run = await runCrashLoop(cloud, a.terminalId, a.dirs, cycles, {
      chaos,
      onCycle: (i) => {
        if ((i + 1) % 100 === 0) process.stderr.write(`  ${i + 1} / ${cycles} cycles\n`);
      },
    });
    cloud = run.cloud;
    const report = run.report;
    const summary = {
      at: new Date().toISOString(),
      seconds: Math.round((Date.now() - started) / 1000),
      cycles: report.cycles,
      cloudKills: report.cloudKills,
      configPushes: report.configPushes,
      configAcked: report.configAcked,
      actions: report.actions,
      submitted: report.submitted,
      acknowledged: report.acknowledged,
      inCloud: report.inCloud,
      lost: report.lost.length,
      duplicated: report.duplicated.length,
      outOfOrder: report.outOfOrder,
      redeliveriesAbsorbed: report.redeliveries,
    };
    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    writeFileSync(join(ROOT, 'bench/soak-results.json'), `${JSON.stringify(summary, null, 2)}\n`);
    if (
      summary.lost ||
      summary.duplicated ||
      summary.outOfOrder ||
      !summary.configAcked ||
      summary.actions.unfinished
    )
      process.exitCode = 1;
  } finally {
    await cloud.stop();
  }
}

main().catch((err: Error) => {
  process.stderr.write(`soak failed: ${err.stack}\n`);
  process.exit(1);
});
