/**
 * Laying text out on a small screen — pure. The terminal's display may be 40 columns by 20 rows:
 * lines wrap on words (a continuation keeps the line's indent; a word longer than the line is
 * broken), and what does not fit is split into pages. Colour escapes take no room.
 */
const ESCAPE_SOURCE = '\u001b\\[[0-9;]*m'; // SGR colour sequences
const ESCAPE = new RegExp(ESCAPE_SOURCE, 'g');
const ESCAPE_SPLIT = new RegExp(`(${ESCAPE_SOURCE})`);
const IS_ESCAPE = new RegExp(`^${ESCAPE_SOURCE}$`);

/**
 * What may reach the screen: text, newlines and our own colour sequences. Any other control
 * character (a name or a reason carrying a terminal escape, a bell, a carriage return) shows as `?`.
 */
export function screenSafe(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: these are what it removes
  return text.replace(/\u001b(?!\[[0-9;]*m)|[\u0000-\u0009\u000b-\u001a\u001c-\u001f\u007f-\u009f]/g, '?');
}

export function visibleLength(s: string): number {
  return s.replace(ESCAPE, '').length;
}

/** Splits a line into tokens: words (with their escapes), and runs of spaces. */
function tokens(line: string): string[] {
  return line.match(/\s+|\S+/g) ?? [];
}

/** Breaks one word that is longer than `width` into pieces (escapes never split). */
function breakWord(word: string, width: number): string[] {
  const pieces: string[] = [];
  let current = '';
  let length = 0;
  for (const part of word.split(ESCAPE_SPLIT)) {
    if (IS_ESCAPE.test(part)) {
      current += part;
      continue;
    }
    for (const ch of part) {
      if (length === width) {
        pieces.push(current);
        current = '';
        length = 0;
      }
      current += ch;
      length++;
    }
  }
  if (current) pieces.push(current);
  return pieces;
}

/** One line wrapped to `width` columns on words; continuation lines keep its indent (if it leaves room). */
export function wrapLine(line: string, width: number): string[] {
  if (visibleLength(line) <= width) return [line];
  const indentText = /^\s*/.exec(line)![0];
  const indent = indentText.length < width / 2 ? indentText : '';
  const out: string[] = [];
  let current = '';
  const push = () => {
    out.push(current.replace(/\s+$/, ''));
    current = indent;
  };
  for (const token of tokens(line)) {
    const room = width - visibleLength(current);
    if (/^\s+$/.test(token)) {
      if (visibleLength(current) > visibleLength(indent) || out.length === 0) {
        if (visibleLength(token) <= room) current += token;
        else push();
      }
      continue;
    }
    if (visibleLength(token) <= room) {
      current += token;
      continue;
    }
    if (visibleLength(current) > visibleLength(indent)) push();
    const space = width - visibleLength(current);
    if (visibleLength(token) <= space) {
      current += token;
      continue;
    }
    const pieces = breakWord(token, space);
    current += pieces.shift() ?? '';
    for (const piece of pieces) {
      push();
      current += piece;
    }
  }
  if (current.trim()) out.push(current.replace(/\s+$/, ''));
  return out.length > 0 ? out : [''];
}

export function wrapText(text: string, width: number): string[] {
  return text.split('\n').flatMap((l) => wrapLine(l, Math.max(10, width)));
}

/** Lines in pages of `rows` (at least one page, even when empty). */
export function paginate(lines: string[], rows: number): string[][] {
  const size = Math.max(1, rows);
  const pages: string[][] = [];
  for (let i = 0; i < lines.length; i += size) pages.push(lines.slice(i, i + size));
  return pages.length > 0 ? pages : [[]];
}

export interface ScreenSize {
  columns: number;
  rows: number;
}

/**
 * A whole screen: the title, a blank line, the body's page `page`, and the footer — every line at
 * most `columns` wide, at most `rows` lines. Returns the screen text and the number of pages.
 */
export function layoutScreen(
  size: ScreenSize,
  title: string,
  body: string,
  footer: (page: number, pages: number) => string,
  page = 0,
): { text: string; pages: number; page: number } {
  const columns = Math.max(20, size.columns);
  const titleLines = wrapText(title, columns);
  // The footer's height is measured with its longest form.
  const footerLines = (p: number, n: number) => wrapText(footer(p, n), columns);
  const reserve = titleLines.length + 1 + Math.max(footerLines(0, 2).length, footerLines(1, 2).length);
  const pages = paginate(wrapText(body, columns), Math.max(3, size.rows - reserve));
  const index = Math.min(Math.max(0, page), pages.length - 1);
  const lines = [...titleLines, '', ...pages[index]!, ...footerLines(index, pages.length)];
  return { text: lines.join('\n'), pages: pages.length, page: index };
}
