import type { TSchema } from '@sinclair/typebox';
import { type ActionName, Actions, type Direction, type RequestOf, type ResponseOf } from './messages.js';
import { isWireErrorCode, RpcError, RpcErrorCode } from './rpc-errors.js';
import { encodeCall, encodeError, encodeResult, type Frame, parseFrame, UNKNOWN_ID } from './rpc-frames.js';
import { compileValidator, describeIssues, type Validator } from './schema-validation.js';

/**
 * One side of the agent link, independent of the socket: give it text frames with `receive`,
 * and it sends through `send`. Both the agent and the cloud use it, so framing, validation and
 * error answers behave the same in both directions. No I/O of its own; timers are injected.
 */
export type Handler<A extends ActionName> = (payload: RequestOf<A>) => Promise<ResponseOf<A>> | ResponseOf<A>;
export type Handlers = { [A in ActionName]?: Handler<A> };

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface RpcSessionOptions {
  /** Which actions this side answers: the agent answers `cloudToAgent`, the cloud `agentToCloud`. */
  answers: Direction;
  handlers: Handlers;
  send(text: string): void;
  newId(): string;
  callTimeoutMs: number;
  timers?: Timers;
  /** Told of every bad frame received and of every error answer sent, for logs and counters. */
  onProtocolError?(error: RpcError, context: { direction: 'in' | 'out'; action?: string }): void;
  /**
   * Consulted before a call is validated and handled (e.g. the cloud's per-link quotas):
   * `refused` answers the call with that error at once; otherwise the call waits `waitMs` first,
   * and `done()` is called once it has been answered, whatever the answer.
   */
  gate?(action: ActionName, payload: unknown): { refused: RpcError } | { waitMs: number; done(): void };
}

const validators = new Map<TSchema, Validator<TSchema>>();
function validatorFor(schema: TSchema): Validator<TSchema> {
  let v = validators.get(schema);
  if (!v) {
    v = compileValidator(schema);
    validators.set(schema, v);
  }
  return v;
}

interface Pending {
  action: ActionName;
  resolve(value: unknown): void;
  reject(error: RpcError): void;
  timer: unknown;
}

const defaultTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export class RpcSession {
  private readonly pending = new Map<string, Pending>();
  private closed = false;
  private readonly timers: Timers;

  constructor(private readonly options: RpcSessionOptions) {
    this.timers = options.timers ?? defaultTimers;
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  /** Calls an action on the peer. Rejects with RpcError (its `code` says why), never hangs past the timeout. */
  call<A extends ActionName>(action: A, payload: RequestOf<A>): Promise<ResponseOf<A>> {
    const spec = Actions[action];
    if (this.closed) return Promise.reject(new RpcError(RpcErrorCode.Disconnected, 'link is closed'));
    if (spec.direction === this.options.answers) {
      return Promise.reject(new RpcError(RpcErrorCode.NotSupported, `${action} is not sent from this side`));
    }
    const check = validatorFor(spec.request).check(payload);
    if (!check.ok) {
      return Promise.reject(
        new RpcError(check.issues[0]!.code, `outgoing ${action} is invalid: ${describeIssues(check.issues)}`),
      );
    }
    const id = this.options.newId();
    return new Promise<ResponseOf<A>>((resolve, reject) => {
      const timer = this.timers.setTimeout(() => {
        this.pending.delete(id);
        reject(
          new RpcError(
            RpcErrorCode.Timeout,
            `${action} got no answer within ${this.options.callTimeoutMs} ms`,
          ),
        );
      }, this.options.callTimeoutMs);
      this.pending.set(id, { action, resolve: resolve as (v: unknown) => void, reject, timer });
      try {
        this.options.send(encodeCall(id, action, payload));
      } catch (err) {
        this.timers.clearTimeout(timer);
        this.pending.delete(id);
        reject(new RpcError(RpcErrorCode.Disconnected, `send failed: ${(err as Error).message}`));
      }
    });
  }

  /** Handles one received text frame. Never throws; a bad frame is answered with an error frame. */
  receive(text: string): void {
    const parsed = parseFrame(text);
    if (!parsed.ok) {
      this.report(parsed.error, 'in');
      this.sendSafe(encodeError(parsed.id, parsed.error.code, parsed.error.message));
      return;
    }
    this.dispatch(parsed.frame);
  }

  /** Answers a binary frame: the protocol is text JSON only. */
  receiveBinary(): void {
    const error = new RpcError(
      RpcErrorCode.RpcFrameworkError,
      'binary frames are not supported; send JSON text frames',
    );
    this.report(error, 'in');
    this.sendSafe(encodeError(UNKNOWN_ID, error.code, error.message));
  }

  /** Rejects every call in flight; later calls fail at once. */
  close(reason: string): void {
    this.closed = true;
    for (const [id, p] of this.pending) {
      this.timers.clearTimeout(p.timer);
      p.reject(
        new RpcError(RpcErrorCode.Disconnected, `link closed before ${p.action} was answered: ${reason}`),
      );
      this.pending.delete(id);
    }
  }

  private dispatch(frame: Frame): void {
    if (frame.type === 2) {
      void this.answer(frame.id, frame.action, frame.payload);
      return;
    }
    const p = this.pending.get(frame.id);
    if (!p) {
      // An answer to nothing we asked (late after a timeout, or a peer bug): note it, do not answer an answer.
      this.report(new RpcError(RpcErrorCode.ProtocolError, `answer for unknown call id ${frame.id}`), 'in');
      return;
    }
    this.pending.delete(frame.id);
    this.timers.clearTimeout(p.timer);
    if (frame.type === 4) {
      const code = isWireErrorCode(frame.code) ? frame.code : RpcErrorCode.GenericError;
      p.reject(new RpcError(code, frame.description, frame.details));
      return;
    }
    const check = validatorFor(Actions[p.action].response).check(frame.payload);
    if (!check.ok) {
      const err = new RpcError(
        check.issues[0]!.code,
        `${p.action} answer is invalid: ${describeIssues(check.issues)}`,
      );
      this.report(err, 'in', p.action);
      p.reject(err);
      return;
    }
    p.resolve(check.value);
  }

  private async answer(id: string, action: string, payload: unknown): Promise<void> {
    const spec = Object.hasOwn(Actions, action)
      ? (Actions as Record<string, (typeof Actions)[ActionName]>)[action]
      : undefined;
    if (!spec) {
      return this.fail(
        id,
        action,
        new RpcError(RpcErrorCode.NotImplemented, `unknown action "${action.slice(0, 64)}"`),
      );
    }
    if (spec.direction !== this.options.answers) {
      // A known action sent the wrong way (e.g. ApplyConfig to the cloud): docs/protocol.md §3.
      return this.fail(
        id,
        action,
        new RpcError(RpcErrorCode.NotSupported, `${action} is not sent to this side`),
      );
    }
    const handler = this.options.handlers[action as ActionName] as ((p: unknown) => unknown) | undefined;
    if (!handler) {
      return this.fail(
        id,
        action,
        new RpcError(RpcErrorCode.NotSupported, `${action} is not supported here`),
      );
    }
    const gate = this.options.gate?.(action as ActionName, payload);
    if (gate && 'refused' in gate) return this.fail(id, action, gate.refused);
    try {
      if (gate && gate.waitMs > 0)
        await new Promise<void>((resolve) => this.timers.setTimeout(resolve, gate.waitMs));
      await this.handle(id, action, spec, handler, payload);
    } finally {
      gate?.done();
    }
  }

  private async handle(
    id: string,
    action: string,
    spec: (typeof Actions)[ActionName],
    handler: (p: unknown) => unknown,
    payload: unknown,
  ): Promise<void> {
    const check = validatorFor(spec.request).check(payload);
    if (!check.ok) {
      return this.fail(
        id,
        action,
        new RpcError(check.issues[0]!.code, describeIssues(check.issues), { issues: check.issues }),
      );
    }
    let result: unknown;
    try {
      result = await handler(check.value);
    } catch (err) {
      if (err instanceof RpcError) return this.fail(id, action, err);
      return this.fail(id, action, new RpcError(RpcErrorCode.InternalError, `${action} failed on this side`));
    }
    const out = validatorFor(spec.response).check(result);
    if (!out.ok) {
      // Our own bug: the details go to our log, the peer gets a generic error.
      this.report(
        new RpcError(
          RpcErrorCode.InternalError,
          `${action} answer failed its schema: ${describeIssues(out.issues)}`,
        ),
        'out',
        action,
      );
      return this.fail(
        id,
        action,
        new RpcError(RpcErrorCode.InternalError, `${action} produced an invalid answer`),
      );
    }
    this.sendSafe(encodeResult(id, out.value));
  }

  private fail(id: string, action: string, error: RpcError): void {
    this.report(error, 'out', action);
    this.sendSafe(encodeError(id, error.code, error.message, error.details));
  }

  private report(error: RpcError, direction: 'in' | 'out', action?: string): void {
    this.options.onProtocolError?.(error, action === undefined ? { direction } : { direction, action });
  }

  private sendSafe(text: string): void {
    if (this.closed) return;
    try {
      this.options.send(text);
    } catch {
      // The socket went away; the owner of the link sees the close and reconnects.
    }
  }
}
