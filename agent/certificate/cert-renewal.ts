import { type RenewRequest, renewalDue, renewIdentity } from '../../enroll/renewal.js';
import type { CertificateSummary, Identity } from '../../identity/identity-store.js';
import type { CrashPoint } from '../crash-points.js';
import { type BackoffPolicy, reconnectDelay } from '../link/backoff.js';

/**
 * The daemon's certificate renewal: checks at start, every `checkIntervalMs`, and whenever the
 * link comes up; renews over the link when due; retries failures with backoff; says in status
 * what it did last. One renewal at a time.
 */
export interface RenewalStatus {
  state: 'idle' | 'renewing' | 'failed';
  lastRenewedAt: string | null;
  lastError: string | null;
  /** When the last failure happened (cleared by a success). */
  lastErrorAt: string | null;
  /** When the renewer looks again (also at once whenever the link comes up while a renewal is due). */
  nextAttemptAt: string | null;
}

export interface CertificateRenewerOptions {
  identity: Identity;
  /** The certificate in use at start. */
  certificate: CertificateSummary;
  stateDir: string;
  now(): number;
  random(): number;
  checkIntervalMs: number;
  renewBeforeDays: number;
  retry: BackoffPolicy;
  /** Renewal over the online link; throws when there is none. */
  request: RenewRequest;
  online(): boolean;
  /** The new pair is installed: reload it and reconnect with it. */
  onInstalled(): Promise<void>;
  crashPoint: CrashPoint;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

/** Automatic renewals at most this often (see `due`). */
const RENEWAL_SPACING_MS = 10 * 60_000;

export class CertificateRenewer {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<CertificateSummary> | null = null;
  private failures = 0;
  private current: CertificateSummary;
  private st: RenewalStatus = {
    state: 'idle',
    lastRenewedAt: null,
    lastError: null,
    lastErrorAt: null,
    nextAttemptAt: null,
  };
  private stopped = false;

  constructor(private readonly o: CertificateRenewerOptions) {
    this.current = o.certificate;
  }

  status(): RenewalStatus {
    return { ...this.st };
  }

  /** The certificate in use: the one at start, then each renewed one. */
  certificate(): CertificateSummary {
    return this.current;
  }

  start(): void {
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** The check interval changed (a pushed `agent.renewalCheckHours`): the next check follows it from now. */
  reschedule(): void {
    if (!this.running && this.st.state !== 'failed') this.schedule(this.o.checkIntervalMs);
  }

  /** The link came up: a renewal that waited for it can go now. */
  onOnline(): void {
    if (this.due() && !this.running) this.schedule(0);
  }

  private lastRenewedMs: number | null = null;

  /**
   * Due by the rule (enroll/renewal.ts), and not renewed by itself in the last 10 minutes: a cloud
   * that issues certificates already due (its clock far behind the device's) gets one renewal per
   * check, not one per link. `posagent cert --renew` is never held back.
   */
  private due(): boolean {
    const now = this.o.now();
    if (this.lastRenewedMs !== null && now - this.lastRenewedMs < RENEWAL_SPACING_MS) return false;
    return renewalDue(this.current, now, this.o.renewBeforeDays);
  }

  private schedule(delayMs: number): void {
    clearTimeout(this.timer);
    if (this.stopped) return;
    this.st.nextAttemptAt = new Date(this.o.now() + delayMs).toISOString();
    this.timer = setTimeout(() => void this.check(), delayMs);
    this.timer.unref();
  }

  private async check(): Promise<void> {
    if (this.due() && this.o.online()) {
      try {
        await this.renewNow();
      } catch {
        // recorded in status; retried below
      }
    }
    if (this.st.state === 'failed') {
      const delay = reconnectDelay(
        { attempt: this.failures, cloudRestarted: false },
        this.o.retry,
        this.o.random,
      );
      this.schedule(Math.min(delay, this.o.checkIntervalMs));
    } else this.schedule(this.o.checkIntervalMs);
  }

  /**
   * Renews now (due or not): `posagent cert --renew`, `posagent reprovision`. Callers at the same
   * time share one renewal. The promise is stored before its body runs and cleared when it
   * settles, so a renewal that fails at once (no link) can never be left behind as "in flight".
   */
  renewNow(): Promise<CertificateSummary> {
    if (this.running) return this.running;
    const attempt = this.renew();
    this.running = attempt;
    const clear = () => {
      if (this.running === attempt) this.running = null;
    };
    attempt.then(clear, clear);
    return attempt;
  }

  private async renew(): Promise<CertificateSummary> {
    // Yield first: nothing below runs before renewNow has stored this attempt.
    await Promise.resolve();
    this.st.state = 'renewing';
    try {
      if (!this.o.online()) throw new Error('the cloud link is not online; renewal goes over the link');
      const { after } = await renewIdentity(
        this.o.identity,
        this.o.stateDir,
        this.o.request,
        this.o.crashPoint,
      );
      this.current = after;
      this.lastRenewedMs = this.o.now();
      this.failures = 0;
      this.st = {
        ...this.st,
        state: 'idle',
        lastRenewedAt: new Date(this.o.now()).toISOString(),
        lastError: null,
        lastErrorAt: null,
      };
      this.o.log.info(
        { notAfter: after.notAfter, fingerprint: after.fingerprint },
        'certificate renewed with a new key',
      );
      await this.o.onInstalled();
      return after;
    } catch (err) {
      this.failures++;
      const message = (err as Error).message;
      this.st = {
        ...this.st,
        state: 'failed',
        lastError: message,
        lastErrorAt: new Date(this.o.now()).toISOString(),
      };
      this.o.log.warn({ err: message, failures: this.failures }, 'certificate renewal failed; will retry');
      throw err;
    }
  }
}
