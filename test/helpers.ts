// Shared test plumbing: run a check on every ISA path, compare arrays with a per-element
// tolerance (and say where they differ), and place buffers at unaligned offsets inside guard zones
// so that SIMD tails that read or write out of bounds are caught.
import * as assert from 'uvu/assert';
import { capabilities, withIsa } from '../lib/index.js';
import type { Isa } from '../lib/index.js';
import type { TrainData, TrainOptions } from '../lib/train.js';
import { U32, type SumResult } from './reference.js';

/** The ISAs under test: only DCL_ISA when it is set (e.g. `DCL_ISA=serial npm test`), else every supported one. */
export function isasUnderTest(): Isa[] {
  const forced = process.env.DCL_ISA;
  if (forced !== undefined && forced !== '') return [forced as Isa];
  return capabilities().isas;
}

/**
 * Runs fn once per ISA under test with that ISA active (withIsa restores the previous one). A
 * failure is re-thrown with the ISA in front of its message.
 */
export function forEachIsa(fn: (isa: Isa) => void): void {
  for (const isa of isasUnderTest()) {
    try {
      withIsa(isa, () => fn(isa));
    } catch (error) {
      if (error instanceof Error && !error.message.startsWith('[isa ')) error.message = `[isa ${isa}] ${error.message}`;
      throw error;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Tolerances for sums of products (conv2d, linear, and their gradients)

/**
 * Relative part of the tolerance. A float32 result is rounded once at the end (u = 6e-8) and a sum
 * whose terms share a sign accumulates up to ~K u relative error; 1e-4 leaves room for K in the
 * thousands and any summation order, yet one missing or doubled term (at least ~1/K of the value
 * for K <= 4096 same-sign terms, usually far more) does not fit in it.
 */
export const SUM_RTOL = 1e-4;
/**
 * Absolute part, per element: SUM_ATOL_ULPS * u * sqrt(K) * scale, scale = sqrt(sum of squared
 * terms) (SumResult.scale). Sequential float32 accumulation of K random-sign terms has an error of
 * standard deviation ~0.4 u sqrt(K) scale (each partial sum is rounded once and grows like a
 * random walk); the largest over the ~1e5 outputs of a DCL-S layer measured 3 u sqrt(K) scale with
 * the serial kernel. 16 leaves a margin of 5 for blocked / FMA / reordered SIMD sums and is still
 * ~1e-5 of a typical value for K = 288: a missing, doubled or misplaced term (a wrong tail lane,
 * stride or padding offset) is O(1/sqrt(K)) of the value, thousands of times the tolerance.
 */
export const SUM_ATOL_ULPS = 16;

/** Tolerance function for a SumResult reference: |got - ref| <= SUM_RTOL |ref| + SUM_ATOL_ULPS u sqrt(K) scale. */
export function sumTolerance(ref: SumResult, rtol = SUM_RTOL, atolUlps = SUM_ATOL_ULPS): (i: number) => number {
  const k = Math.sqrt(Math.max(1, ref.terms));
  return (i) => rtol * Math.abs(ref.value[i]) + atolUlps * U32 * k * ref.scale[i];
}

/**
 * Asserts got[i] ~ want[i] within tol(i) for every i, NaN only where want is NaN, +-Infinity only
 * where want is the same infinity. A failure lists the count, the worst few elements (index, and
 * coordinates when `where` is given) and the largest error relative to its tolerance.
 */
export function assertClose(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  tol: (i: number) => number,
  label: string,
  where?: (i: number) => string,
): void {
  assert.is(got.length, want.length, `${label}: length`);
  const bad: { i: number; ratio: number }[] = [];
  for (let i = 0; i < want.length; i++) {
    const g = got[i];
    const w = want[i];
    let ok: boolean;
    let ratio: number;
    if (Number.isNaN(w)) {
      ok = Number.isNaN(g);
      ratio = ok ? 0 : Infinity;
    } else if (!Number.isFinite(w)) {
      ok = g === w;
      ratio = ok ? 0 : Infinity;
    } else {
      const err = Math.abs(g - w);
      const t = tol(i);
      ok = err <= t; // false for a NaN g
      ratio = ok ? 0 : t > 0 ? err / t : Infinity;
      if (Number.isNaN(ratio)) ratio = Infinity;
    }
    if (!ok) bad.push({ i, ratio });
  }
  if (bad.length === 0) return;
  bad.sort((a, b) => b.ratio - a.ratio);
  const lines = bad
    .slice(0, 6)
    .map(({ i }) => `[${i}${where ? ' ' + where(i) : ''}] got ${got[i]} want ${want[i]} (tol ${tol(i).toExponential(2)})`);
  assert.unreachable(
    `${label}: ${bad.length} of ${want.length} elements outside the tolerance (worst ${bad[0].ratio.toPrecision(3)}x):\n    ${lines.join('\n    ')}`,
  );
}

/** Exact equality element by element (NaN equals NaN of any payload; +0 and -0 differ). */
export function assertSame(got: ArrayLike<number>, want: ArrayLike<number>, label: string, where?: (i: number) => string): void {
  assert.is(got.length, want.length, `${label}: length`);
  const bad: number[] = [];
  for (let i = 0; i < want.length; i++) {
    const g = got[i];
    const w = want[i];
    if (!(Object.is(g, w) || (Number.isNaN(g) && Number.isNaN(w)))) bad.push(i);
  }
  if (bad.length === 0) return;
  const lines = bad.slice(0, 6).map((i) => `[${i}${where ? ' ' + where(i) : ''}] got ${Object.is(got[i], -0) ? '-0' : got[i]} want ${Object.is(want[i], -0) ? '-0' : want[i]}`);
  assert.unreachable(`${label}: ${bad.length} of ${want.length} elements differ:\n    ${lines.join('\n    ')}`);
}

/** "n,c,y,x" for flat index i of an NCHW tensor (for failure messages). */
export function nchw(shape: readonly number[]): (i: number) => string {
  const [, c, h, w] = shape;
  return (i) => {
    const x = i % w;
    const y = Math.floor(i / w) % h;
    const ch = Math.floor(i / (w * h)) % c;
    const n = Math.floor(i / (w * h * c));
    return `(n${n} c${ch} y${y} x${x})`;
  };
}

export function rowCol(cols: number): (i: number) => string {
  return (i) => `(r${Math.floor(i / cols)} c${i % cols})`;
}

// ---------------------------------------------------------------------------------------------
// Unaligned views inside guard zones

/** Floats on each side of a guarded view: more than one 16-lane vector plus a partial one. */
export const GUARD = 37;

/**
 * Copies `values` into the middle of a larger buffer at an offset of `offset` floats past a
 * 64-byte boundary (1..15: never vector-aligned), the rest filled with `fill`. An input filled
 * around with NaN turns any out-of-bounds read that reaches a result into a NaN the comparison sees.
 */
export function embed(values: Float32Array, offset = 3, fill = Number.NaN): Float32Array {
  const buffer = new Float32Array(offset + GUARD + values.length + GUARD + 16);
  buffer.fill(fill);
  const view = buffer.subarray(offset + GUARD, offset + GUARD + values.length);
  view.set(values);
  return view;
}

/** The sentinel around guarded outputs: a value no kernel produces by accident. */
const SENTINEL = -1234.5625;

/**
 * An output buffer of `length` floats at an unaligned offset, prefilled with `inside` (NaN by
 * default: an element the kernel forgets to write stays NaN) and surrounded by a sentinel.
 * `intact()` asserts that nothing outside the view was written.
 */
export function guardedOutput(length: number, offset = 5, inside = Number.NaN): { view: Float32Array; intact: (label: string) => void } {
  const buffer = new Float32Array(offset + GUARD + length + GUARD + 16);
  buffer.fill(SENTINEL);
  const start = offset + GUARD;
  const view = buffer.subarray(start, start + length);
  view.fill(inside);
  return {
    view,
    intact(label: string) {
      for (let i = 0; i < buffer.length; i++) {
        if (i >= start && i < start + length) continue;
        if (buffer[i] !== SENTINEL)
          assert.unreachable(`${label}: wrote outside the output (${i < start ? start - i + ' floats before' : i - start - length + 1 + ' floats after'} it)`);
      }
    },
  };
}

/** Asserts the input was not modified by the call (kernels read their inputs only). */
export function assertUnchanged(before: Float32Array, after: Float32Array, label: string): void {
  assertSame(after, before, `${label} modified an input`);
}

/** A copy (to check later that a call left its inputs alone). */
export function clone(a: Float32Array): Float32Array {
  return new Float32Array(a);
}

/**
 * Asserts that fn fails with a message matching `pattern` (uvu's assert.throws re-throws its own
 * assertion errors, so it cannot test a checker that fails through uvu/assert).
 */
export function assertFails(fn: () => void, pattern: RegExp, label: string): void {
  let message: string | undefined;
  try {
    fn();
  } catch (error) {
    message = error instanceof Error ? error.message : String(error);
  }
  if (message === undefined) {
    assert.unreachable(`${label}: expected a failure, but it passed`);
    return;
  }
  assert.match(message, pattern, `${label}: failed with an unexpected message`);
}

// ---------------------------------------------------------------------------------------------
// Quick training runs

/** A DCL-S small enough that a training run on 32x32 generated faces takes a second or two. */
export const SMALL_NETWORK = { channels: [8, 16], kernels: [5, 3], hidden: 32 };

/** Options for such a run on `data` (80 steps of 8 people x 4 images, on the calling thread), with `extra` on top. */
export function quickTrainOptions(data: TrainData, extra: Partial<TrainOptions>): TrainOptions {
  return {
    data,
    network: SMALL_NETWORK,
    steps: 80,
    identitiesPerBatch: 8,
    imagesPerIdentity: 4,
    learningRate: 5e-4,
    worker: false,
    progressEvery: 5,
    seed: 3,
    ...extra,
  };
}
