/**
 * Redaction shared by the agent (the support bundle, collect_logs) and the cloud (a stored log
 * bundle is scrubbed again: a buggy or hostile agent cannot make the cloud keep a PAN). Pure.
 */
/**
 * Drops `user:password@` from URLs, PEM private keys, bearer tokens, the values of JSON fields
 * named like secrets (token, secret, password, authorization, apiKey) and digit runs that pass the
 * card-number (Luhn) check.
 */
export function scrub(text: string): string {
  return text
    .replace(/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}/g, '$1 [token removed]')
    .replace(
      /("(?:[A-Za-z_]*(?:token|secret|password|authorization|apiKey|api_key)[A-Za-z_]*)"\s*:\s*)"(?:[^"\\]|\\.)*"/gi,
      '$1"[removed]"',
    )
    .replace(
      /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g,
      '[private key removed]',
    )
    .replace(/\/\/[^/@\s"]+:[^/@\s"]+@/g, '//[credentials removed]@')
    .replace(/\b\d{13,19}\b/g, (n) => (luhn(n) ? '[card number removed]' : n));
}

function luhn(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = Number(digits[digits.length - 1 - i]);
    if (i % 2 === 1) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
  }
  return sum % 10 === 0;
}
