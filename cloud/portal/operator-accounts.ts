import { Refusal } from '../../protocol/refusal.js';
import { EnrollmentBudget } from '../enrollment/enrollment-budget.js';
import type {
  EnrollmentLimitStore,
  OperatorRole,
  OperatorRow,
  OperatorStore,
  PortalSessionStore,
} from '../store/store-types.js';
import { decoyHash, hashPassword, verifyPassword } from './passwords.js';
import { OPERATOR_ROLES } from './portal-roles.js';

/** An operator as shown (never the hash). */
export interface OperatorView {
  name: string;
  role: OperatorRole;
  createdAt: number;
}

export interface SignInLimits {
  /** Failed sign-ins from one address within the window before it is refused. */
  perSource: number;
  /** Failed sign-ins for one operator name within the window before it is refused (from anywhere). */
  perAccount: number;
  /** Failed sign-ins from everywhere within the window before every sign-in waits. */
  global: number;
  windowMs: number;
}

export const SIGN_IN_DEFAULTS: SignInLimits = {
  perSource: 10,
  perAccount: 10,
  global: 200,
  windowMs: 15 * 60_000,
};

const NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/i;

/**
 * Operator accounts of the support portal: made with `posagent-cloud user add`, signed in with a
 * password. Failed sign-ins are counted in the store (per address, per account name, and overall)
 * with the enrollment budget's rules, so guessing is bounded across restarts; a refusal never says
 * whether the name exists.
 */
export class OperatorAccounts {
  private readonly bySource: EnrollmentBudget<'signin'>;
  private readonly byAccount: EnrollmentBudget<'signin-account'>;

  constructor(
    private readonly o: {
      operators: OperatorStore;
      sessions: PortalSessionStore;
      failures: Pick<EnrollmentLimitStore, 'recordFailure' | 'failures' | 'nthFailureAt'>;
      limits?: SignInLimits;
      now(): number;
    },
  ) {
    const l = o.limits ?? SIGN_IN_DEFAULTS;
    this.bySource = new EnrollmentBudget(o.failures, {
      perSource: l.perSource,
      global: l.global,
      windowMs: l.windowMs,
    });
    this.byAccount = new EnrollmentBudget(o.failures, {
      perSource: l.perAccount,
      global: 0,
      windowMs: l.windowMs,
    });
  }

  async add(name: string, role: string, password: string): Promise<OperatorView> {
    if (!NAME.test(name))
      throw new Refusal(
        'invalid_request',
        'an operator name is 1–64 letters, digits, ".", "_" or "-", starting with a letter or digit',
      );
    const r = roleOf(role);
    const row: OperatorRow = {
      name,
      role: r,
      passwordHash: await hashPassword(password),
      createdAt: Math.floor(this.o.now() / 1000),
    };
    if (!(await this.o.operators.insert(row)))
      throw new Refusal('operator_exists', `an operator named ${name} exists already`);
    return view(row);
  }

  async list(): Promise<OperatorView[]> {
    return (await this.o.operators.list()).map(view);
  }

  async get(name: string): Promise<OperatorView | undefined> {
    const row = await this.o.operators.get(name);
    return row ? view(row) : undefined;
  }

  /** A new password signs every session of that operator out. */
  async setPassword(name: string, password: string): Promise<void> {
    const hash = await hashPassword(password);
    if (!(await this.o.operators.setPassword(name, hash)))
      throw new Refusal('not_found', `no operator ${name}`);
    await this.o.sessions.removeOperator(name);
  }

  async setRole(name: string, role: string): Promise<OperatorView> {
    if (!(await this.o.operators.setRole(name, roleOf(role))))
      throw new Refusal('not_found', `no operator ${name}`);
    return view((await this.o.operators.get(name))!);
  }

  async remove(name: string): Promise<void> {
    await this.o.sessions.removeOperator(name);
    if (!(await this.o.operators.remove(name))) throw new Refusal('not_found', `no operator ${name}`);
  }

  /** The operator, or a refusal: `sign_in_failed` (never which half was wrong) or `rate_limited`. */
  async signIn(name: string, password: string, source: string): Promise<OperatorView> {
    const now = this.o.now();
    const account = name.toLowerCase().slice(0, 64);
    for (const verdict of [
      await this.bySource.check('signin', source, now),
      await this.byAccount.check('signin-account', account, now),
    ])
      if (!verdict.ok)
        throw new Refusal(
          'rate_limited',
          `too many failed sign-ins; try again in ${Math.ceil(verdict.retryAfterMs / 1000)} s`,
          { retryAfterSec: Math.ceil(verdict.retryAfterMs / 1000) },
        );
    const row = await this.o.operators.get(name);
    const ok = await verifyPassword(password, row?.passwordHash ?? (await decoyHash()));
    if (!row || !ok) {
      const at = this.o.now();
      await this.bySource.fail('signin', source, at);
      await this.byAccount.fail('signin-account', account, at);
      throw new Refusal('sign_in_failed', 'wrong operator name or password');
    }
    return view(row);
  }
}

function roleOf(role: string): OperatorRole {
  if (!(OPERATOR_ROLES as readonly string[]).includes(role))
    throw new Refusal('invalid_request', `role must be one of ${OPERATOR_ROLES.join(', ')} (got "${role}")`);
  return role as OperatorRole;
}

function view(row: OperatorRow): OperatorView {
  return { name: row.name, role: row.role, createdAt: row.createdAt };
}
