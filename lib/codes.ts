// Code layouts n x Q: a face code is n dimensions of Q bits each packed into one 32-bit integer
// (n * Q <= 32). Dimension i occupies bits [i Q, (i + 1) Q), dimension 0 the lowest; the bits above
// n Q are 0. The public type of a code is Int32Array (the same bits may be read as a Uint32Array,
// which every function here also accepts).
//
// Quantization: level_i = clamp(floor(2^Q p_i), 0, 2^Q - 1), with NaN (and anything <= 0) giving 0
// and p >= 1 giving 2^Q - 1. Distance: Q = 1 Hamming; Q > 1 L1 over the n levels (the metric the
// network is trained for), or Hamming over the n Q bits on request.
import { DclError } from './errors.js';
import { native } from './native.js';
import { asTensor } from './tensor.js';
import type { TensorLike } from './tensor.js';
import { describe, fail, knownKeys, plainObject } from './validate.js';

export interface CodeLayout {
  /** Number of dimensions. */
  readonly n: number;
  /** Bits per dimension. */
  readonly q: number;
  /** n * q, at most 32. */
  readonly bits: number;
  /** 2^q: the number of levels of one dimension. */
  readonly levels: number;
  /** The canonical name, e.g. '8x4'. */
  readonly name: string;
}

/** A layout as a name ('8x4') or as { n, q }. */
export type LayoutLike = string | { n: number; q: number };

/** The four layouts of the paper, from 32 binary dimensions to 4 dimensions of a byte. */
export const PAPER_LAYOUTS: readonly string[] = Object.freeze(['32x1', '16x2', '8x4', '4x8']);

/** 'l1': sum of |level differences| (Hamming when q = 1); 'hamming': differing bits of the n q bits. */
export type CodeMetric = 'l1' | 'hamming';

const LAYOUT_RULE = "a layout 'nxQ' with n >= 1, Q from 1 to 32 and n*Q <= 32 (such as '32x1', '16x2', '8x4', '4x8')";

function makeLayout(n: number, q: number): CodeLayout {
  return Object.freeze({ n, q, bits: n * q, levels: 2 ** q, name: `${n}x${q}` });
}

/**
 * Parses and validates a layout: '8x4' (or '8X4') or { n: 8, q: 4 }. Throws DclError E_ARG for
 * anything else, e.g. '8x5' (40 bits), '0x4', '33x1', '1x33'.
 */
export function parseLayout(layout: unknown, name = 'layout'): CodeLayout {
  let n: unknown;
  let q: unknown;
  if (typeof layout === 'string') {
    const m = /^([0-9]{1,3})[xX]([0-9]{1,3})$/.exec(layout);
    if (!m) fail('E_ARG', LAYOUT_RULE, name, layout);
    n = Number(m[1]);
    q = Number(m[2]);
  } else if (layout !== null && typeof layout === 'object' && !Array.isArray(layout) && !ArrayBuffer.isView(layout)) {
    const o = layout as Record<string, unknown>;
    // A CodeLayout from parseLayout passes through; otherwise only { n, q }.
    if (!('bits' in o && 'levels' in o && 'name' in o)) knownKeys(o, ['n', 'q'], name);
    n = o.n;
    q = o.q;
  } else {
    fail('E_ARG', LAYOUT_RULE, name, layout);
  }
  const ok =
    typeof n === 'number' && typeof q === 'number' && Number.isInteger(n) && Number.isInteger(q) && n >= 1 && q >= 1 && q <= 32 && n * q <= 32;
  if (!ok) {
    const shown = typeof layout === 'string' ? layout : `{ n: ${describe(n)}, q: ${describe(q)} }`;
    throw new DclError('E_ARG', `Expected ${LAYOUT_RULE} for ${name} but received ${typeof layout === 'string' ? JSON.stringify(shown) : shown}`);
  }
  return makeLayout(n as number, q as number);
}

/** The largest distance two codes of the layout can have: n (2^q - 1) for 'l1', n q for 'hamming'. */
export function maxDistance(layout: LayoutLike, metric: CodeMetric = 'l1'): number {
  const l = parseLayout(layout);
  checkMetric(metric, 'metric');
  return metric === 'hamming' ? l.bits : l.n * (l.levels - 1);
}

function checkMetric(metric: unknown, name: string): CodeMetric {
  if (metric !== 'l1' && metric !== 'hamming') fail('E_ARG', "'l1' or 'hamming'", name, metric);
  return metric;
}

/** Bits that must be 0 in a code of the layout (those above n q). */
export function unusedBits(l: CodeLayout): number {
  return l.bits >= 32 ? 0 : ~((2 ** l.bits - 1) | 0);
}

/**
 * Views an Int32Array / Uint32Array of codes as Int32Array (no copy) and checks the unused bits:
 * the one argument check every API taking packed codes shares (E_ARG with the index on failure).
 */
export function codesArray(value: unknown, l: CodeLayout, name: string, what = 'an Int32Array (or Uint32Array) of codes'): Int32Array {
  let codes: Int32Array;
  if (value instanceof Int32Array) codes = value;
  else if (value instanceof Uint32Array) codes = new Int32Array(value.buffer, value.byteOffset, value.length);
  else fail('E_ARG', what, name, value);
  const unused = unusedBits(l);
  if (unused !== 0) {
    for (let i = 0; i < codes.length; i++) {
      if ((codes[i] & unused) !== 0)
        throw new DclError(
          'E_ARG',
          `Expected codes of layout ${l.name} (bits above ${l.bits} zero) for ${name} but received 0x${(codes[i] >>> 0).toString(16)} at index ${i}`,
        );
    }
  }
  return codes;
}

/** codesArray as a Uint32Array view (no copy), for code that compares codes as unsigned bins. */
export function codesUint32(value: unknown, l: CodeLayout, name: string): Uint32Array {
  const c = codesArray(value, l, name);
  return new Uint32Array(c.buffer, c.byteOffset, c.length);
}

/** One code given as a number: an int32 (negative for the top bit set) or the same bits as a uint32. */
function codeNumber(value: unknown, l: CodeLayout, name: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < -(2 ** 31) || value >= 2 ** 32)
    fail('E_ARG', 'an integer code (int32 or uint32)', name, value);
  const u = value >>> 0;
  if ((u & unusedBits(l)) !== 0)
    throw new DclError('E_ARG', `Expected a code of layout ${l.name} (bits above ${l.bits} zero) for ${name} but received 0x${u.toString(16)}`);
  return u;
}

function probabilities(p: unknown, l: CodeLayout, name: string): { data: Float32Array; count: number } {
  if (p instanceof Float32Array) {
    if (p.length % l.n !== 0)
      throw new DclError('E_SHAPE', `Expected a Float32Array whose length is a multiple of n = ${l.n} (layout ${l.name}) for ${name} but received ${describe(p)}`);
    return { data: p, count: p.length / l.n };
  }
  const t = asTensor(p, name, 2);
  if (t.shape[1] !== l.n)
    throw new DclError('E_SHAPE', `Expected shape [N, ${l.n}] (layout ${l.name}) for ${name} but received shape [${t.shape.join(', ')}]`);
  return { data: t.data, count: t.shape[0] };
}

/**
 * Quantizes and packs: p [N, n] (a tensor, or a Float32Array of N n values) in [0, 1) -> N codes.
 * level_i = clamp(floor(2^q p_i), 0, 2^q - 1); NaN and values <= 0 give 0, values >= 1 give 2^q - 1.
 */
export function quantize(p: TensorLike | Float32Array, layout: LayoutLike, options?: { out?: Int32Array }): Int32Array {
  const l = parseLayout(layout);
  const { data, count } = probabilities(p, l, 'p');
  const o = plainObject(options, 'options');
  knownKeys(o, ['out'], 'options');
  let out: Int32Array;
  if (o.out === undefined) out = new Int32Array(count);
  else if (!(o.out instanceof Int32Array) || o.out.length !== count) fail('E_ARG', `an Int32Array of length ${count}`, 'options.out', o.out);
  else out = o.out;
  if (count > 0) native.quantizePack(data, out, [count, l.n, l.q]);
  return out;
}

/** Packs levels (N n integers from 0 to 2^q - 1, dimension-major per code) into N codes. */
export function pack(levels: ArrayLike<number>, layout: LayoutLike): Int32Array {
  const l = parseLayout(layout);
  if (levels === null || typeof levels !== 'object' || typeof (levels as { length?: unknown }).length !== 'number')
    fail('E_ARG', 'an array or typed array of levels', 'levels', levels);
  if (levels.length % l.n !== 0)
    throw new DclError('E_SHAPE', `Expected a number of levels that is a multiple of n = ${l.n} (layout ${l.name}) for levels but received ${describe(levels)}`);
  const count = levels.length / l.n;
  const top = l.levels - 1;
  const out = new Int32Array(count);
  for (let c = 0; c < count; c++) {
    let code = 0;
    for (let i = 0; i < l.n; i++) {
      const v = levels[c * l.n + i];
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > top)
        fail('E_ARG', `integer levels from 0 to ${top} (layout ${l.name})`, `levels[${c * l.n + i}]`, v);
      // Multiplication, not <<, so that a q = 32 level (up to 2^32 - 1) is not cut to 32 bits first.
      code += v * 2 ** (i * l.q);
    }
    out[c] = code | 0;
  }
  return out;
}

/**
 * Unpacks N codes into their N n levels, dimension-major per code: Uint8Array for q <= 8,
 * Uint32Array otherwise.
 */
export function unpack(codes: Int32Array | Uint32Array, layout: LayoutLike): Uint8Array | Uint32Array {
  const l = parseLayout(layout);
  const c = codesArray(codes, l, 'codes');
  const out = l.q <= 8 ? new Uint8Array(c.length * l.n) : new Uint32Array(c.length * l.n);
  const field = l.q >= 32 ? 0xffffffff : 2 ** l.q - 1;
  for (let k = 0; k < c.length; k++) {
    const u = c[k] >>> 0;
    for (let i = 0; i < l.n; i++) out[k * l.n + i] = l.q >= 32 ? u : (u >>> (i * l.q)) & field;
  }
  return out;
}

/**
 * How many of the layout's n dimensions take more than one level across `codes`. A dimension whose
 * level is the same for every code adds nothing to any distance: with the sigmoid output saturated
 * for every image it also gets (almost) no gradient, so in training it stays that way (README,
 * "Dimensions in use").
 */
export function dimensionsInUse(codes: Int32Array | Uint32Array, layout: LayoutLike): number {
  const l = parseLayout(layout);
  const c = codesArray(codes, l, 'codes');
  if (c.length === 0) return 0;
  // Bits that differ from the first code anywhere; a dimension is in use when any of its bits is.
  let differ = 0;
  for (let k = 1; k < c.length; k++) differ |= c[k] ^ c[0];
  let used = 0;
  const field = l.q >= 32 ? 0xffffffff : 2 ** l.q - 1;
  for (let i = 0; i < l.n; i++) if ((l.q >= 32 ? differ : (differ >>> (i * l.q)) & field) !== 0) used++;
  return used;
}

function popcount(x: number): number {
  x = x - ((x >>> 1) & 0x55555555);
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}

function distanceOf(a: number, b: number, l: CodeLayout, metric: CodeMetric): number {
  if (metric === 'hamming' || l.q === 1) return popcount((a ^ b) >>> 0);
  if (l.q >= 32) return Math.abs(a - b);
  const field = 2 ** l.q - 1;
  let s = 0;
  for (let i = 0; i < l.n; i++) s += Math.abs(((a >>> (i * l.q)) & field) - ((b >>> (i * l.q)) & field));
  return s;
}

function distanceOptions(options: unknown): { metric: CodeMetric; out?: unknown } {
  const o = plainObject(options, 'options');
  knownKeys(o, ['metric', 'out'], 'options');
  return { metric: o.metric === undefined ? 'l1' : checkMetric(o.metric, 'options.metric'), out: o.out };
}

/** The distance between two codes (numbers: int32, or the same bits as uint32). */
export function codeDistance(a: number, b: number, layout: LayoutLike, options?: { metric?: CodeMetric }): number {
  const l = parseLayout(layout);
  const ua = codeNumber(a, l, 'a');
  const ub = codeNumber(b, l, 'b');
  const { metric, out } = distanceOptions(options);
  if (out !== undefined) throw new DclError('E_ARG', "Expected only the options metric for options but received an option 'out'");
  return distanceOf(ua, ub, l, metric);
}

/**
 * Element-wise distances between two equally long arrays of codes (native, all ISAs), as a
 * Uint32Array: the 1x32 layout's L1 distances reach 2^32 - 1.
 */
export function codeDistances(
  a: Int32Array | Uint32Array,
  b: Int32Array | Uint32Array,
  layout: LayoutLike,
  options?: { metric?: CodeMetric; out?: Uint32Array },
): Uint32Array {
  const l = parseLayout(layout);
  const ca = codesArray(a, l, 'a');
  const cb = codesArray(b, l, 'b');
  if (ca.length !== cb.length)
    throw new DclError('E_SHAPE', `Expected b to have as many codes as a (${ca.length}) but received ${describe(b)}`);
  const { metric, out: o } = distanceOptions(options);
  let out: Uint32Array;
  if (o === undefined) out = new Uint32Array(ca.length);
  else if (!(o instanceof Uint32Array) || o.length !== ca.length) fail('E_ARG', `a Uint32Array of length ${ca.length}`, 'options.out', o);
  else out = o;
  if (ca.length > 0) native.codeDistances(ca, cb, out, [ca.length, l.n, l.q, metric === 'hamming' ? 1 : 0]);
  return out;
}
