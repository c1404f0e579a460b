// Argument checks shared by every public entry point. Messages follow one pattern:
// "Expected <what> for <name> but received <what came>".
import { DclError } from './errors.js';

/** A short, readable description of a received value for error messages. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'number') return Number.isNaN(value) ? 'NaN' : String(value);
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? value.slice(0, 40) + '...' : value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'boolean' || typeof value === 'symbol') return String(value);
  if (typeof value === 'function') return 'a function';
  if (ArrayBuffer.isView(value)) {
    const name = value.constructor?.name ?? 'typed array';
    const length = (value as unknown as { length?: number }).length;
    return length === undefined ? name : `${name} of length ${length}`;
  }
  if (Array.isArray(value)) {
    const shown = value.slice(0, 8).map((v) => (typeof v === 'object' && v !== null ? '...' : describe(v)));
    return `[${shown.join(', ')}${value.length > 8 ? ', ...' : ''}]`;
  }
  const name = (value as object).constructor?.name;
  return name && name !== 'Object' ? `a ${name}` : 'an object';
}

export function fail(code: 'E_ARG' | 'E_SHAPE', expected: string, name: string, received: unknown): never {
  throw new DclError(code, `Expected ${expected} for ${name} but received ${describe(received)}`);
}

/** Largest element count a tensor may have: plane indices (max-pool argmax) are int32. */
export const MAX_ELEMENTS = 2 ** 31 - 1;

export function isPositiveInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0;
}

export function positiveInteger(value: unknown, name: string, max = MAX_ELEMENTS): number {
  if (!isPositiveInteger(value) || value > max) fail('E_ARG', `a positive integer no larger than ${max}`, name, value);
  return value;
}

export function nonNegativeInteger(value: unknown, name: string, max = MAX_ELEMENTS): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > max)
    fail('E_ARG', `a non-negative integer no larger than ${max}`, name, value);
  return value;
}

/** A size given as one integer or an [h, w] pair. */
export function pair(
  value: unknown,
  name: string,
  check: (v: unknown, n: string) => number,
): [number, number] {
  if (Array.isArray(value)) {
    if (value.length !== 2) fail('E_ARG', 'an integer or an [h, w] pair', name, value);
    return [check(value[0], `${name}[0]`), check(value[1], `${name}[1]`)];
  }
  const v = check(value, name);
  return [v, v];
}

export function plainObject(value: unknown, name: string): Record<string, unknown> {
  if (value === undefined) return {};
  const proto = value !== null && typeof value === 'object' ? Object.getPrototypeOf(value) : undefined;
  // Only plain objects: a Map, Date or typed array would have its options silently ignored.
  if (proto !== Object.prototype && proto !== null) fail('E_ARG', 'a plain options object', name, value);
  return value as Record<string, unknown>;
}

/** Rejects option names the call does not know, so a typo is not silently ignored. */
export function knownKeys(options: Record<string, unknown>, allowed: readonly string[], name: string): void {
  for (const key of Object.keys(options)) {
    if (!allowed.includes(key))
      throw new DclError('E_ARG', `Expected only the options ${allowed.join(', ')} for ${name} but received an option '${key}'`);
  }
}

export function shapeArray(value: unknown, name: string, rank?: number): number[] {
  if (!Array.isArray(value)) fail('E_SHAPE', rank ? `a shape array of ${rank} positive integers` : 'a shape array', name, value);
  if (rank !== undefined && value.length !== rank) fail('E_SHAPE', `a shape of rank ${rank}`, name, value);
  if (value.length === 0) fail('E_SHAPE', 'a non-empty shape', name, value);
  let size = 1;
  // An index loop, not forEach: forEach skips the holes of a sparse array such as [, 4].
  for (let i = 0; i < value.length; i++) size *= positiveInteger(value[i], `${name}[${i}]`);
  if (size > MAX_ELEMENTS) fail('E_SHAPE', `a shape of at most ${MAX_ELEMENTS} elements`, name, value);
  return value.slice() as number[];
}

/** True when two typed arrays share any bytes (an output must not overwrite an input it reads). */
export function overlaps(a: ArrayBufferView, b: ArrayBufferView): boolean {
  if (a.buffer !== b.buffer) return false;
  return a.byteOffset < b.byteOffset + b.byteLength && b.byteOffset < a.byteOffset + a.byteLength;
}

/**
 * An optional number option: `fallback` when undefined, else a finite number in [lo, hi] (an
 * integer when `integer`), or E_ARG "Expected a number / an integer from lo to hi for name ...".
 */
export function numberOption(value: unknown, name: string, fallback: number, lo: number, hi: number, integer = false): number {
  if (value === undefined) return fallback;
  const ok = typeof value === 'number' && Number.isFinite(value) && value >= lo && value <= hi && (!integer || Number.isInteger(value));
  if (!ok) throw new DclError('E_ARG', `Expected ${integer ? 'an integer' : 'a number'} from ${lo} to ${hi} for ${name} but received ${describe(value)}`);
  return value as number;
}
