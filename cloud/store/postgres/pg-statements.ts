import type pg from 'pg';
import type { TransactionScopes } from '../transaction-scope.js';

/** One statement: PostgreSQL text with `$n` placeholders, and which named parameter is each `$n`. */
export interface PgStatement {
  name: string;
  text: string;
  params: readonly string[];
}

/**
 * The PostgreSQL tables' statement style, the SQLite one's twin: named parameters (`@name`) from
 * one object, each statement translated once when the table is built. An alias in camelCase is
 * quoted (PostgreSQL folds unquoted names to lower case), so the column lists read as in SQLite.
 */
export function pgStatements<K extends string>(
  table: string,
  sql: Record<K, string>,
): Record<K, PgStatement> {
  const out = {} as Record<K, PgStatement>;
  for (const k of Object.keys(sql) as K[]) {
    const params: string[] = [];
    const text = sql[k]
      .replace(/\bAS ([a-z]+[A-Z]\w*)/g, 'AS "$1"')
      // `@x IS NULL` alone tells PostgreSQL no type: the optional filters are text, or a seq.
      .replace(
        /@(\w+) IS NULL/g,
        (_, name: string) => `@${name}::${name === 'beforeSeq' ? 'bigint' : 'text'} IS NULL`,
      )
      .replace(/@(\w+)/g, (_, name: string) => {
        let i = params.indexOf(name);
        if (i < 0) i = params.push(name) - 1;
        return `$${i + 1}`;
      });
    out[k] = { name: `${table}.${k}`, text, params };
  }
  return out;
}

/** Where a statement runs: the transaction's client when the caller is inside one, else the pool. */
export class PgExec {
  constructor(
    private readonly pool: pg.Pool,
    private readonly scopes: TransactionScopes<pg.PoolClient>,
  ) {}

  private async query(s: PgStatement, args: object): Promise<pg.QueryResult> {
    const values = s.params.map((p) => {
      const v = (args as Record<string, unknown>)[p];
      if (v === undefined) throw new Error(`${s.name}: no value for @${p}`);
      return v;
    });
    const on = this.scopes.current()?.conn ?? this.pool;
    return on.query({ name: s.name, text: s.text, values });
  }

  async one<T>(s: PgStatement, args: object = {}): Promise<T | undefined> {
    return (await this.query(s, args)).rows[0] as T | undefined;
  }

  async all<T>(s: PgStatement, args: object = {}): Promise<T[]> {
    return (await this.query(s, args)).rows as T[];
  }

  /** How many rows it changed. */
  async run(s: PgStatement, args: object = {}): Promise<number> {
    return (await this.query(s, args)).rowCount ?? 0;
  }

  /** Like `run`, but a unique violation changes nothing and answers 0 (SQLite's `OR IGNORE`). */
  async runOrIgnore(s: PgStatement, args: object = {}): Promise<number> {
    const inside = this.scopes.current();
    // Inside a transaction a failed statement aborts it: a savepoint keeps the failure to itself.
    if (inside) await inside.conn.query('SAVEPOINT or_ignore');
    try {
      const n = await this.run(s, args);
      if (inside) await inside.conn.query('RELEASE or_ignore');
      return n;
    } catch (err) {
      if (inside) await inside.conn.query('ROLLBACK TO or_ignore');
      if ((err as { code?: string }).code === '23505') return 0;
      throw err;
    }
  }
}

/** The tables keep booleans as 0/1 in both engines: the row shapes are the same. */
export const bit = (b: boolean): number => (b ? 1 : 0);
