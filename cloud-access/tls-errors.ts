/**
 * Turns Node's TLS and socket error codes into sentences a technician can act on.
 * Used by enrollment and by the agent's link, so both say the same thing for the same cause.
 */
const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_SIGNATURE_FAILURE',
]);

export interface ExplainedError {
  /** Stable code: cloud_untrusted, cloud_cert_expired, clock_wrong, hostname_mismatch, unreachable, tls_error… */
  code: string;
  message: string;
  /** True when retrying cannot help without a change on the device or the cloud. */
  permanent: boolean;
}

export function explainConnectionError(err: unknown, cloud: string): ExplainedError {
  const e = err as NodeJS.ErrnoException & { reason?: string };
  const code = e?.code ?? '';
  if (UNTRUSTED.has(code)) {
    return {
      code: 'cloud_untrusted',
      message: `the cloud at ${cloud} presented a certificate not signed by the pinned fleet CA (${code})`,
      permanent: true,
    };
  }
  if (code === 'PROXY_REFUSED' || code === 'PROXY_UNREACHABLE' || code === 'PROXY_INVALID') {
    return {
      code:
        code === 'PROXY_REFUSED'
          ? 'proxy_refused'
          : code === 'PROXY_INVALID'
            ? 'proxy_invalid'
            : 'proxy_unreachable',
      message: e.message,
      permanent: code === 'PROXY_INVALID',
    };
  }
  if (code === 'CERT_HAS_EXPIRED') {
    return {
      code: 'cloud_cert_expired',
      message: `the cloud's certificate has expired, or this device's clock (${new Date().toISOString()}) is ahead (${code})`,
      permanent: false,
    };
  }
  if (code === 'CERT_NOT_YET_VALID') {
    return {
      code: 'clock_wrong',
      message: `the cloud's certificate is not valid yet: this device's clock (${new Date().toISOString()}) is probably behind (${code})`,
      permanent: false,
    };
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return {
      code: 'hostname_mismatch',
      message: `the cloud's certificate does not name the host in ${cloud} (${e.reason ?? code})`,
      permanent: true,
    };
  }
  if (
    [
      'ECONNREFUSED',
      'ECONNRESET',
      'EHOSTUNREACH',
      'ENETUNREACH',
      'ETIMEDOUT',
      'ENOTFOUND',
      'EAI_AGAIN',
      'EPIPE',
    ].includes(code)
  ) {
    return { code: 'unreachable', message: `cannot reach the cloud at ${cloud} (${code})`, permanent: false };
  }
  const text = e instanceof Error ? e.message : String(err);
  if (/alert|handshake|certificate/i.test(text)) {
    return { code: 'tls_error', message: `TLS handshake with ${cloud} failed: ${text}`, permanent: false };
  }
  return { code: 'connection_failed', message: `connection to ${cloud} failed: ${text}`, permanent: false };
}
