import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * Which transaction the code running now is inside, for a store whose transactions span awaits:
 * every store call made (however deep) from inside `transaction(fn)` finds the transaction here
 * and runs in it; a call from anywhere else waits until no transaction is open (SQLite, one
 * connection) or takes a connection of its own (PostgreSQL). A context that outlives its
 * transaction (a timer set inside it fires later) is no longer inside: `open` is false by then.
 */
export interface Scope<C> {
  /** The engine's handle the transaction runs on (SQLite: none; PostgreSQL: the checked-out client). */
  readonly conn: C;
  open: boolean;
  /** Savepoint names in use, for nesting. */
  depth: number;
}

export class TransactionScopes<C> {
  private readonly als = new AsyncLocalStorage<Scope<C>>();

  /** The open transaction the caller is inside, if any. */
  current(): Scope<C> | undefined {
    const s = this.als.getStore();
    return s?.open ? s : undefined;
  }

  /** Runs `fn` inside `scope`, closing the scope when it settles. */
  async run<T>(scope: Scope<C>, fn: () => Promise<T>): Promise<T> {
    try {
      return await this.als.run(scope, fn);
    } finally {
      scope.open = false;
    }
  }
}

/** One at a time, in the order asked: `run` waits for the one before it to settle. */
export class AsyncLock {
  private tail: Promise<void> = Promise.resolve();
  private held = false;

  get busy(): boolean {
    return this.held;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    const before = this.tail;
    let release!: () => void;
    this.tail = new Promise<void>((r) => {
      release = r;
    });
    await before;
    this.held = true;
    try {
      return await fn();
    } finally {
      this.held = false;
      release();
    }
  }
}
