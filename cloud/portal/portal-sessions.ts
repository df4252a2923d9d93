import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { OperatorRole, OperatorStore, PortalSessionStore } from '../store/store-types.js';

export interface SessionLimits {
  /** A session not used for this long is over (the operator signs in again). */
  idleMs: number;
  /** A session is over this long after sign-in, used or not. */
  maxMs: number;
}

export const SESSION_DEFAULTS: SessionLimits = { idleMs: 30 * 60_000, maxMs: 12 * 3600_000 };

/** A signed-in operator, as a request sees them. */
export interface PortalSession {
  operator: string;
  role: OperatorRole;
  csrfToken: string;
  tokenHash: string;
}

/**
 * Writes of "last seen" are at most this often per session (a page of polls is not a write each),
 * and always well inside the idle limit, so a session in use never looks idle.
 */
const TOUCH_EVERY_MS = 60_000;

const hashToken = (token: string) => createHash('sha256').update(token).digest('base64url');

/**
 * Portal sessions: a random token in the cookie, only its hash in the store (shared by every cloud
 * process), a CSRF token per session, an idle expiry and an absolute one. The role is read from
 * the operator's row on every request, so a demotion or removal takes effect at once.
 */
export class PortalSessions {
  constructor(
    private readonly o: {
      sessions: PortalSessionStore;
      operators: Pick<OperatorStore, 'get'>;
      limits?: SessionLimits;
      now(): number;
    },
  ) {}

  get limits(): SessionLimits {
    return this.o.limits ?? SESSION_DEFAULTS;
  }

  async open(operator: string): Promise<{ token: string; session: PortalSession }> {
    const token = randomBytes(32).toString('base64url');
    const now = this.o.now();
    const row = {
      tokenHash: hashToken(token),
      operator,
      csrfToken: randomBytes(24).toString('base64url'),
      createdAt: now,
      lastSeenAt: now,
    };
    await this.o.sessions.insert(row);
    const role = (await this.o.operators.get(operator))?.role ?? 'support';
    return { token, session: { operator, role, csrfToken: row.csrfToken, tokenHash: row.tokenHash } };
  }

  /** The session of a cookie's token, or undefined when there is none, it expired or its operator is gone. */
  async resolve(token: string | undefined): Promise<PortalSession | undefined> {
    if (!token || token.length > 128) return undefined;
    const tokenHash = hashToken(token);
    const row = await this.o.sessions.get(tokenHash);
    if (!row) return undefined;
    const now = this.o.now();
    const { idleMs, maxMs } = this.limits;
    if (now - row.lastSeenAt > idleMs || now - row.createdAt > maxMs) {
      await this.o.sessions.remove(tokenHash);
      return undefined;
    }
    const operator = await this.o.operators.get(row.operator);
    if (!operator) return undefined;
    if (now - row.lastSeenAt >= Math.min(TOUCH_EVERY_MS, idleMs / 10))
      await this.o.sessions.touch(tokenHash, now);
    return { operator: row.operator, role: operator.role, csrfToken: row.csrfToken, tokenHash };
  }

  async close(session: PortalSession): Promise<void> {
    await this.o.sessions.remove(session.tokenHash);
  }

  async prune(): Promise<number> {
    const now = this.o.now();
    return await this.o.sessions.prune(now - this.limits.idleMs, now - this.limits.maxMs);
  }
}

/** Constant-time comparison of a presented CSRF token with the session's. */
export function sameToken(presented: string | undefined, expected: string): boolean {
  if (typeof presented !== 'string') return false;
  const a = Buffer.from(presented);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
