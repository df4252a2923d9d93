import { describe, expect, it } from 'vitest';
import {
  layoutScreen,
  paginate,
  screenSafe,
  visibleLength,
  wrapLine,
  wrapText,
} from '../../diagnostics/menu-screen.js';

/** Issue 18.5: the menu's text on a 40×20 display — wrapped on words, paged. */
describe('menu screen layout', () => {
  it('wraps on words, never inside one that fits, and keeps the indent of a continued line', () => {
    const lines = wrapLine('  PASS  tls             the cloud certificate chains to the pinned fleet CA', 40);
    expect(lines).toEqual([
      '  PASS  tls             the cloud',
      '  certificate chains to the pinned fleet',
      '  CA',
    ]);
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(40);
  });

  it('breaks a word longer than the line, and ignores colour escapes when measuring', () => {
    const long = `x ${'A'.repeat(95)}`;
    const lines = wrapLine(long, 40);
    expect(lines.map((l) => l.length)).toEqual([1, 40, 40, 15]); // the long word starts its own line
    const coloured = `\u001b[32mPASS\u001b[0m  dns  ${'word '.repeat(10)}`;
    for (const l of wrapLine(coloured, 20)) expect(visibleLength(l)).toBeLessThanOrEqual(20);
    expect(wrapLine(coloured, 20)[0]).toContain('\u001b[32mPASS\u001b[0m');
  });

  it('pages what does not fit', () => {
    const lines = Array.from({ length: 45 }, (_, i) => `line ${i}`);
    expect(paginate(lines, 15).map((p) => p.length)).toEqual([15, 15, 15]);
    expect(paginate([], 10)).toEqual([[]]);
  });

  it('a screen is at most 40×20 with its title and footer, and every page of the body is reachable', () => {
    const body = wrapText(
      Array.from({ length: 30 }, (_, i) => `check ${i}: ${'detail '.repeat(8)}`).join('\n'),
      40,
    ).join('\n');
    const footer = (p: number, n: number) =>
      p < n - 1 ? `page ${p + 1}/${n} — space: next` : 'any key: back';
    const first = layoutScreen({ columns: 40, rows: 20 }, 'Run diagnostics', body, footer);
    expect(first.pages).toBeGreaterThan(1);
    const seen: string[] = [];
    for (let p = 0; p < first.pages; p++) {
      const s = layoutScreen({ columns: 40, rows: 20 }, 'Run diagnostics', body, footer, p);
      const lines = s.text.split('\n');
      expect(lines.length).toBeLessThanOrEqual(20);
      for (const l of lines) expect(visibleLength(l)).toBeLessThanOrEqual(40);
      seen.push(...lines.filter((l) => l.startsWith('check') || l.startsWith('detail')));
    }
    for (let i = 0; i < 30; i++) expect(seen.some((l) => l.startsWith(`check ${i}:`))).toBe(true);
  });

  it('lets through text, newlines and colour; any other control character shows as ?', () => {
    const name = 'Till 1\u001b]0;owned\u0007\u001b[2J\r\u009b';
    expect(screenSafe(`\u001b[1m${name}\u001b[0m\nnext`)).toBe(
      '\u001b[1mTill 1?]0;owned??[2J??\u001b[0m\nnext',
    );
  });
});
