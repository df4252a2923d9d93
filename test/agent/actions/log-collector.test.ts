import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { collectLogs } from '../../../agent/actions/log-collector.js';
import { checkLogSpan } from '../../../protocol/actions.js';
import { Refusal } from '../../../protocol/refusal.js';
import { tempDir } from '../../support/processes.js';

const NOW = Date.parse('2026-12-02T08:00:00Z');
const span = { since: '2026-12-02T07:00:00Z', until: '2026-12-02T08:00:00Z' };
// A PAN that passes the Luhn check, a private key, a bearer token, a secret field.
const PAN = '4111111111111111';
const lines = [
  JSON.stringify({ level: 30, time: 1, msg: 'link online' }),
  JSON.stringify({ level: 20, time: 2, msg: 'debug detail' }),
  JSON.stringify({
    level: 50,
    time: 3,
    msg: `card ${PAN} refused`,
    authorization: 'Bearer abcdefghijklmnop',
  }),
  JSON.stringify({ level: 40, time: 4, msg: 'retrying', adminToken: 'tok_supersecret123' }),
  '-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----'.replaceAll(
    '\n',
    ' ',
  ),
  'https://user:hunter2@proxy.example:3128 used',
];

function fakeJournal(text: string): { command: string; args: string } {
  const dir = tempDir('journal');
  const out = join(dir, 'lines.txt');
  const args = join(dir, 'args.txt');
  writeFileSync(out, text);
  return { command: `echo "$@" {since} {until} > ${args}; cat ${out}`, args };
}

/** Issue 24 item 5: what a collect_logs bundle holds — the span, the level, nothing secret, capped. */
describe('collect_logs on the device', () => {
  it('the span and level the cloud asked for; PANs, keys, tokens and credentials removed', async () => {
    const j = fakeJournal(`${lines.join('\n')}\n`);
    const r = await collectLogs({ command: j.command, params: { ...span, level: 'info' }, nowMs: NOW });
    const text = gunzipSync(r.gzip).toString('utf8');
    expect(text.split('\n')[0]).toBe(
      '# posagent logs 2026-12-02T07:00:00Z .. 2026-12-02T08:00:00Z, info and above: 3 lines',
    );
    expect(text).toContain('link online');
    expect(text).not.toContain('debug detail'); // below info
    expect(text).not.toContain(PAN);
    expect(text).toContain('[card number removed]');
    expect(text).not.toContain('abcdefghijklmnop');
    expect(text).not.toContain('tok_supersecret123');
    expect(r).toMatchObject({ lines: 3, dropped: 0 });
    // {since}/{until} are Unix seconds, nothing else from the cloud reaches the command line.
    const all = await collectLogs({ command: j.command, params: span, nowMs: NOW });
    const plain = gunzipSync(all.gzip).toString('utf8');
    expect(all.lines).toBe(6);
    expect(readFileSync(j.args, 'utf8').trim()).toBe(
      `${Date.parse(span.since) / 1000} ${Date.parse(span.until) / 1000}`,
    );
    expect(plain).toContain('[private key removed]');
    expect(plain).not.toContain('hunter2');
  });

  it('capped: the newest lines are kept and the header says how many were left out', async () => {
    const many = Array.from({ length: 5000 }, (_, i) =>
      JSON.stringify({ level: 30, i, msg: 'x'.repeat(200) }),
    );
    const j = fakeJournal(many.join('\n'));
    const r = await collectLogs({ command: j.command, params: span, nowMs: NOW, maxBytes: 100_000 });
    const text = gunzipSync(r.gzip).toString('utf8');
    expect(r.bytes).toBeLessThanOrEqual(100_000 + 200);
    expect(r.lines + r.dropped).toBe(5000);
    expect(text).toContain('"i":4999');
    expect(text).not.toContain('"i":0,');
    expect(text.split('\n')[0]).toMatch(/the oldest \d+ left out \(over 100000 bytes\)/);
  });

  it('a span that is backwards, too long or in the future is refused by name; a failing command says why', async () => {
    const refusal = (p: typeof span) => {
      try {
        checkLogSpan(p, NOW);
      } catch (err) {
        return err instanceof Refusal ? `${err.code}: ${err.message}` : String(err);
      }
      return 'accepted';
    };
    expect(refusal({ since: span.until, until: span.since })).toBe(
      'invalid_action: since (2026-12-02T08:00:00Z) must be before until (2026-12-02T07:00:00Z)',
    );
    expect(refusal({ since: '2026-11-01T00:00:00Z', until: span.until })).toBe(
      'invalid_action: a log span may be at most 7 days',
    );
    expect(refusal({ since: '2026-12-03T00:00:00Z', until: '2026-12-03T01:00:00Z' })).toBe(
      'invalid_action: since (2026-12-03T00:00:00Z) is in the future',
    );
    await expect(
      collectLogs({ command: 'echo no journal >&2; exit 1', params: span, nowMs: NOW }),
    ).rejects.toThrow('the log command failed: no journal');
  });
});
