import type { DiagnosticsReport } from '../protocol/messages.js';
import { type CheckGroup, type DiagnosticsContext, runChecks } from './checks.js';

/** The report (its schema is in protocol/): `posagent diagnostics --json`, `GET /v1/diagnostics`, the remote request, the bundle. */
export type { DiagnosticsReport };

export async function diagnose(ctx: DiagnosticsContext): Promise<DiagnosticsReport> {
  const checks = await runChecks(ctx);
  const summary = { pass: 0, warn: 0, fail: 0 };
  for (const c of checks) summary[c.status]++;
  return { checks, summary, generatedAt: new Date(ctx.now()).toISOString() };
}

const GROUP_TITLES: Record<CheckGroup, string> = {
  identity: 'Identity',
  network: 'Connection to the cloud',
  agent: 'Agent',
  device: 'Device',
};

/** The report for a technician's screen, grouped; colour only when asked (a TTY). */
export function formatReport(r: DiagnosticsReport, colour: boolean): string {
  const paint = (code: string, s: string) => (colour ? `\u001b[${code}m${s}\u001b[0m` : s);
  const mark = { pass: paint('32', 'PASS'), warn: paint('33', 'WARN'), fail: paint('31', 'FAIL') };
  const lines: string[] = [];
  for (const group of Object.keys(GROUP_TITLES) as CheckGroup[]) {
    const inGroup = r.checks.filter((c) => c.group === group);
    if (inGroup.length === 0) continue;
    lines.push(paint('1', GROUP_TITLES[group]));
    for (const c of inGroup) {
      lines.push(`  ${mark[c.status]}  ${c.id.padEnd(15)} ${c.detail}`);
      if (c.hint && c.status !== 'pass') lines.push(`        ${''.padEnd(15)} → ${c.hint}`);
    }
  }
  lines.push('');
  lines.push(
    `${r.summary.pass} passed, ${r.summary.warn} warnings, ${r.summary.fail} failed (${r.generatedAt})`,
  );
  return lines.join('\n');
}
