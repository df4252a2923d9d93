import { X509Certificate } from 'node:crypto';
import type { TLSSocket, Server as TlsServer } from 'node:tls';
import { Refusal } from '../../protocol/refusal.js';
import type { TerminalStore } from '../store/store-types.js';

/**
 * Who is on the other end of an mTLS connection: a certificate from the fleet CA that is the
 * current (or the pending, renewed) certificate of an active terminal. One check for the agent
 * link and the agent's HTTPS calls, so both refuse the same certificates for the same reasons.
 *
 * The certificate's identity — issued by the fleet CA itself, its signature (OpenSSL's chain check
 * against the fleet CA, or node:crypto's when OpenSSL did not pass it), its terminal id and
 * fingerprint — is checked once per TLS connection, when its handshake completes. Its dates are
 * checked at every request on the connection (a kept-alive connection may outlive its
 * certificate), and the terminal's row (active, not revoked, current certificate) at every one too.
 */
export type Admission = { terminalId: string } | { refused: Refusal; terminalId?: string };

/** The fleet CA's check of a client certificate. */
export type PeerVerdict =
  | { ok: true; terminalId: string; fingerprint: string }
  /**
   * `terminalId` and `fingerprint`: the certificate is the fleet CA's own (signature verified) but
   * refused at this time — expired, not yet valid.
   */
  | { ok: false; refusal: Refusal; terminalId?: string; fingerprint?: string };

/** What a certificate is, checked once per connection; its dates are judged at each use. */
type Identity =
  | { ok: true; terminalId: string; fingerprint: string; notBeforeMs: number; notAfterMs: number }
  | { ok: false; refusal: Refusal };

const identities = new WeakMap<TLSSocket, Identity>();

/** A certificate refused: `kind: "authentication"` (a deactivated terminal's is 403 here, not 409). */
const no = (code: string, message: string): { ok: false; refusal: Refusal } => ({
  ok: false,
  refusal: new Refusal(code, message, { kind: 'authentication' }),
});

/** Checks the certificate a TLS peer presented against the fleet CA, at `nowMs`; pure but for the socket read. */
export function verifyPeer(tls: TLSSocket, ca: X509Certificate, nowMs: number): PeerVerdict {
  return atTime(identityOf(tls, ca), nowMs);
}

function identityOf(tls: TLSSocket, ca: X509Certificate): Identity {
  const peer = tls.getPeerX509Certificate?.();
  if (!peer) return no('client_certificate_required', 'a client certificate is required');
  // The server's only `ca` is the fleet CA, so a socket OpenSSL marked authorized has a chain
  // OpenSSL checked against it (at the full handshake; a resumed session carries that verdict):
  // its signature is not checked twice. Otherwise verify() runs first: besides checking the
  // signature, node:crypto clears OpenSSL's per-thread error queue when it returns. OpenSSL's own
  // chain check leaves an RSA padding error there for a certificate that names the fleet CA as its
  // issuer but was signed with another key; Node 20 then reads that stale error on the
  // connection's next TLS 1.2 read and resets it, so the client got no answer and nothing was
  // logged (mostly) or a 403 (sometimes).
  const signed = tls.authorized || peer.verify(ca.publicKey);
  // Issued by the fleet CA itself, not through an intermediate, whoever checked the signature
  // (names and key identifiers: no signature math).
  if (!peer.checkIssued(ca))
    return no(
      'client_certificate_rejected',
      peer.issuer === ca.subject
        ? "client certificate was not issued by this fleet's CA (it names the fleet CA as its issuer, but another certificate of that name issued it: an intermediate or another key)"
        : `client certificate was not issued by this fleet's CA (its issuer is ${oneLine(peer.issuer)})`,
    );
  if (!signed)
    return no(
      'client_certificate_rejected',
      "client certificate was not issued by this fleet's CA (it names the fleet CA as issuer, but its signature does not verify with the CA's key)",
    );
  return {
    ok: true,
    terminalId: /^CN=(.*)$/m.exec(peer.subject)?.[1] ?? '',
    fingerprint: peer.fingerprint256.replace(/:/g, '').toLowerCase(),
    notBeforeMs: Date.parse(peer.validFrom),
    notAfterMs: Date.parse(peer.validTo),
  };
}

/** The dates, at the time of this use: a session or a kept-alive connection may outlive its certificate. */
function atTime(id: Identity, nowMs: number): PeerVerdict {
  if (!id.ok) return id;
  const { terminalId, fingerprint } = id;
  if (!(nowMs < id.notAfterMs))
    return {
      ...no(
        'certificate_expired',
        `the client certificate expired on ${iso(id.notAfterMs)}; it can no longer be renewed: reprovision the terminal (POST /v1/terminals/${terminalId}/reprovision) and enroll it with that code`,
      ),
      terminalId,
      fingerprint,
    };
  if (!(nowMs >= id.notBeforeMs))
    return {
      ...no(
        'certificate_not_yet_valid',
        `the client certificate is not valid before ${iso(id.notBeforeMs)}; the device that made it has a wrong clock`,
      ),
      terminalId,
      fingerprint,
    };
  return { ok: true, terminalId, fingerprint };
}

function iso(ms: number): string {
  return Number.isFinite(ms) ? new Date(ms).toISOString() : 'an unreadable date';
}

function oneLine(name: string): string {
  return name.split('\n').join(', ').slice(0, 200);
}

/** Checks every client certificate's identity once, when its TLS handshake completes (see identityOf). */
export function verifyPeersAtHandshake(server: TlsServer, caPem: string): void {
  const ca = new X509Certificate(caPem);
  server.on('secureConnection', (tls: TLSSocket) => {
    identities.set(tls, identityOf(tls, ca));
  });
}

/** The identity checked at the handshake (or now, for a socket that was not watched), judged at `nowMs`. */
export function peerVerdict(tls: TLSSocket, caPem: string, nowMs: number): PeerVerdict {
  let id = identities.get(tls);
  if (!id) {
    id = identityOf(tls, new X509Certificate(caPem));
    identities.set(tls, id);
  }
  return atTime(id, nowMs);
}

export async function authenticateTerminal(
  tls: TLSSocket,
  o: {
    store: { terminals: Pick<TerminalStore, 'get' | 'promotePendingCertificate' | 'isRevoked'> };
    caPem: string;
    now(): number;
  },
): Promise<Admission> {
  const verdict = peerVerdict(tls, o.caPem, o.now());
  if (!verdict.ok)
    return verdict.terminalId !== undefined
      ? { refused: verdict.refusal, terminalId: verdict.terminalId }
      : { refused: verdict.refusal };
  const { terminalId, fingerprint } = verdict;
  const row = await o.store.terminals.get(terminalId);
  if (!row) return { refused: no('unknown_terminal', `no terminal ${terminalId} in this fleet`).refusal };
  if (row.deactivatedAt !== null)
    return {
      terminalId,
      refused: no(
        'terminal_deactivated',
        `terminal ${terminalId} was deactivated at ${new Date(row.deactivatedAt).toISOString()} (${row.deactivationReason ?? 'no reason given'}); enroll it again`,
      ).refusal,
    };
  if (await o.store.terminals.isRevoked(fingerprint))
    return {
      terminalId,
      refused: no(
        'certificate_revoked',
        `this certificate of ${terminalId} was revoked; reprovision the terminal (POST /v1/terminals/${terminalId}/reprovision) and enroll it with that code`,
      ).refusal,
    };
  if (fingerprint === row.pendingFingerprint) {
    // First use of a renewed certificate: it becomes current; the old one is refused from now on.
    await o.store.terminals.promotePendingCertificate(terminalId);
    return { terminalId };
  }
  if (fingerprint !== row.certFingerprint) return { terminalId, refused: superseded(terminalId) };
  return { terminalId };
}

const superseded = (terminalId: string) =>
  no('certificate_superseded', `this certificate is no longer the current one of ${terminalId}`).refusal;
