import type { Static, TSchema } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { ValueErrorType } from '@sinclair/typebox/errors';
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

/**
 * Compiles a TypeBox schema once into a checker that reports every issue with its path.
 * The same validators serve the agent and the cloud.
 */
export function compileValidator<T extends TSchema>(schema: T): Validator<T> {
  const compiled = TypeCompiler.Compile(schema);
  return {
    schema,
    check(value: unknown): Validation<Static<T>> {
      if (compiled.Check(value)) return { ok: true, value: value as Static<T> };
      const issues: SchemaIssue[] = [];
      for (const e of compiled.Errors(value)) {
        issues.push({ path: e.path, message: e.message, code: codeFor(e.type) });
        if (issues.length >= 20) break;
      }
      return { ok: false, issues };
    },
  };
}

/** One line for humans: `"/tip/mode: Expected union value; /x: ..."`. */
export function describeIssues(issues: readonly SchemaIssue[]): string {
  return issues.map((i) => `${i.path || '/'}: ${i.message}`).join('; ');
}
