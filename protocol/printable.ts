/**
 * Replaces control characters (escape sequences included) before text from elsewhere is printed.
 * Its own module, without TypeBox: `posagent status` prints names with it, and loads nothing else
 * of the protocol's schemas.
 */
export function printable(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: these are what it removes
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
}
