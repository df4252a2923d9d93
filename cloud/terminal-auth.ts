import type { TLSSocket } from 'node:tls';
import type { CloudStore } from './cloud-store.js';

/**
 * Who is on the other end of an mTLS connection: a certificate from the fleet CA that is the
 * current (or the pending, renewed) certificate of an active terminal. One check for the agent
 * link and the agent's HTTPS calls, so both refuse the same certificates for the same reasons.
 */
export interface Refusal {
  status: number;
  code: string;
  message: string;
}
export type Admission = { terminalId: string } | { refused: Refusal };

export function authenticateTerminal(
  tls: TLSSocket,
  store: Pick<CloudStore, 'getTerminal' | 'promotePendingCertificate'>,
): Admission {
  const no = (status: number, code: string, message: string) => ({ refused: { status, code, message } });
  const peer = tls.getPeerCertificate?.();
  if (!peer?.raw) return no(401, 'client_certificate_required', 'a client certificate is required');
  if (!tls.authorized) {
    const why = String(tls.authorizationError);
    if (why === 'CERT_HAS_EXPIRED')
      return no(
        403,
        'certificate_expired',
        `the client certificate expired on ${new Date(peer.valid_to).toISOString()}; it can no longer be renewed: enroll the terminal again with a replacement code`,
      );
    if (why === 'CERT_NOT_YET_VALID')
      return no(
        403,
        'certificate_not_yet_valid',
        `the client certificate is not valid before ${new Date(peer.valid_from).toISOString()}; the device that made it has a wrong clock`,
      );
    return no(
      403,
      'client_certificate_rejected',
      `client certificate was not issued by this fleet's CA (${why})`,
    );
  }
  const terminalId = typeof peer.subject?.CN === 'string' ? peer.subject.CN : '';
  const row = store.getTerminal(terminalId);
  if (!row) return no(403, 'unknown_terminal', `no terminal ${terminalId} in this fleet`);
  if (row.deactivatedAt !== null)
    return no(
      403,
      'terminal_deactivated',
      `terminal ${terminalId} was deactivated at ${new Date(row.deactivatedAt).toISOString()} (${row.deactivationReason ?? 'no reason given'}); enroll it again`,
    );
  const fingerprint = peer.fingerprint256.replace(/:/g, '').toLowerCase();
  if (fingerprint === row.pendingFingerprint) {
    // First use of a renewed certificate: it becomes current; the old one is refused from now on.
    store.promotePendingCertificate(terminalId);
    return { terminalId };
  }
  if (fingerprint !== row.certFingerprint)
    return no(
      403,
      'certificate_superseded',
      `this certificate is no longer the current one of ${terminalId}`,
    );
  return { terminalId };
}
