import type { Static, TSchema } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { type ValueError, ValueErrorType } from '@sinclair/typebox/errors';
import { RpcErrorCode } from './rpc-errors.js';

/** One reason a value did not match its schema: where, what, and the RPC code it maps to. */
export interface SchemaIssue {
  /** JSON pointer of the offending field, e.g. `/tip/suggestions/4`; `` for the root. */
  path: string;
  message: string;
  code: RpcErrorCode;
}

export type Validation<T> = { ok: true; value: T } | { ok: false; issues: SchemaIssue[] };

export interface Validator<T extends TSchema> {
  readonly schema: T;
  check(value: unknown): Validation<Static<T>>;
}

const OCCURRENCE = new Set<ValueErrorType>([
  ValueErrorType.ObjectRequiredProperty,
  ValueErrorType.ArrayMaxItems,
  ValueErrorType.ArrayMinItems,
  ValueErrorType.ObjectMaxProperties,
  ValueErrorType.ObjectMinProperties,
]);
const PROPERTY = new Set<ValueErrorType>([
  ValueErrorType.StringMaxLength,
  ValueErrorType.StringMinLength,
  ValueErrorType.StringPattern,
  ValueErrorType.StringFormat,
  ValueErrorType.NumberMaximum,
  ValueErrorType.NumberMinimum,
  ValueErrorType.NumberExclusiveMaximum,
  ValueErrorType.NumberExclusiveMinimum,
  ValueErrorType.IntegerMaximum,
  ValueErrorType.IntegerMinimum,
  ValueErrorType.Literal,
  ValueErrorType.Union,
  ValueErrorType.ArrayUniqueItems,
]);
const FORMAT = new Set<ValueErrorType>([ValueErrorType.ObjectAdditionalProperties]);

function codeFor(type: ValueErrorType): RpcErrorCode {
  if (OCCURRENCE.has(type)) return RpcErrorCode.OccurrenceConstraintViolation;
  if (PROPERTY.has(type)) return RpcErrorCode.PropertyConstraintViolation;
  if (FORMAT.has(type)) return RpcErrorCode.FormatViolation;
  return RpcErrorCode.TypeConstraintViolation;
}

type SchemaNode = {
  const?: unknown;
  type?: string;
  anyOf?: SchemaNode[];
  properties?: Record<string, unknown>;
  patternProperties?: Record<string, unknown>;
  description?: string;
  pattern?: string;
};

const shown = (v: unknown) => {
  const text = JSON.stringify(v);
  return text === undefined ? String(v) : text.length > 40 ? `${text.slice(0, 40)}…` : text;
};

/** What one alternative of a union accepts, in words. */
function alternative(s: SchemaNode): string {
  if ('const' in s) return JSON.stringify(s.const);
  if (s.type === 'null') return 'null';
  return s.description ?? (s.type ? `a${/^[aeiou]/.test(s.type) ? 'n' : ''} ${s.type}` : 'a value');
}

/**
 * The message for one issue, naming what is allowed: the values of a union (`must be one of
 * "percentage", "fixed"`), the known fields of an object, the form of a key — TypeBox's own words
 * (`Expected union value`) do not say what would have been right.
 */
function explain(e: ValueError): string {
  const schema = e.schema as SchemaNode;
  if (e.type === ValueErrorType.Union && schema.anyOf) {
    const options = schema.anyOf.map(alternative);
    return `must be ${options.length === 1 ? options[0] : `one of ${options.join(', ')}`} (got ${shown(e.value)})`;
  }
  if (e.type === ValueErrorType.ObjectAdditionalProperties) {
    const field = e.path.split('/').pop() ?? '';
    if (schema.patternProperties)
      return `"${field}" is not allowed here: keys must match ${Object.keys(schema.patternProperties).join(' or ')}`;
    const known = Object.keys(schema.properties ?? {});
    return `"${field}" is not a known field${known.length ? `; allowed: ${known.join(', ')}` : ''}`;
  }
  if (e.type === ValueErrorType.StringPattern && schema.description) {
    const d = schema.description;
    const article = /^(a|an|the) /i.test(d) ? '' : /^[aeiou]/i.test(d) ? 'an ' : 'a ';
    return `must be ${article}${d} (${schema.pattern}), got ${shown(e.value)}`;
  }
  return e.message;
}

/**
 * A checker for a TypeBox schema that reports every issue with its path. The same validators
 * serve the agent and the cloud. Compiled once, on its first check — not when the module that
 * declares it loads: a process compiles only the message families it meets (an idle agent never
 * compiles the enrollment or the action schemas), and starts faster.
 */
export function compileValidator<T extends TSchema>(schema: T): Validator<T> {
  let compiled: ReturnType<typeof TypeCompiler.Compile<T>> | undefined;
  return {
    schema,
    check(value: unknown): Validation<Static<T>> {
      compiled ??= TypeCompiler.Compile(schema);
      if (compiled.Check(value)) return { ok: true, value: value as Static<T> };
      const issues: SchemaIssue[] = [];
      for (const e of compiled.Errors(value)) {
        issues.push({ path: e.path, message: explain(e), code: codeFor(e.type) });
        if (issues.length >= 20) break;
      }
      return { ok: false, issues };
    },
  };
}

/** One line for humans: `/tip/mode: must be one of "percentage", "fixed" (got "tips"); /x: …`. */
export function describeIssues(issues: readonly SchemaIssue[]): string {
  return issues.map((i) => `${i.path || '/'}: ${i.message}`).join('; ');
}
