// Float64 reference implementations, written plainly from the definitions, and the numeric
// helpers the suites share (seeded PRNG, random data, error measures, a finite-difference
// gradient checker). Nothing here calls the package: this file is the oracle the native kernels
// (every ISA) are compared against.
//
// Layouts follow the package: NCHW activations, [Cout, Cin, KH, KW] conv weights, [out, in]
// linear weights. Every reference reads float32 inputs into float64 and accumulates in float64, so
// its own rounding error (~1e-16 relative) is negligible next to the float32 kernels it checks.

export type Pair = [number, number];

/** float32 unit roundoff (half an ulp of 1): the relative error of one correctly rounded operation. */
export const U32 = 2 ** -24;
/** Smallest normal float32. Results below it may be flushed to zero by a SIMD kernel (FTZ/DAZ). */
export const MIN_NORMAL32 = 2 ** -126;

// ---------------------------------------------------------------------------------------------
// Seeded randomness

/** mulberry32: a small, fast 32-bit PRNG; the same seed always gives the same stream. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class Rng {
  private readonly next: () => number;
  constructor(readonly seed: number) {
    this.next = mulberry32(seed);
  }
  /** Uniform in [0, 1). */
  float(): number {
    return this.next();
  }
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }
  /** Uniform integer in [lo, hi] (both included). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  bool(p = 0.5): boolean {
    return this.next() < p;
  }
  pick<T>(values: readonly T[]): T {
    return values[Math.floor(this.next() * values.length)];
  }
  /** Standard normal (Box-Muller). */
  normal(): number {
    const u = 1 - this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  /** A random permutation of 0..n-1. */
  permutation(n: number): number[] {
    const p = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [p[i], p[j]] = [p[j], p[i]];
    }
    return p;
  }
  /** k distinct indices from [0, n) (all of them, in order, when n <= k). */
  sample(n: number, k: number): number[] {
    if (n <= k) return Array.from({ length: n }, (_, i) => i);
    const chosen = new Set<number>();
    while (chosen.size < k) chosen.add(Math.floor(this.next() * n));
    return [...chosen].sort((a, b) => a - b);
  }
}

/** Uniform random float32 values in [lo, hi). */
export function randomFloat32(rng: Rng, length: number, lo = -1, hi = 1): Float32Array {
  const a = new Float32Array(length);
  for (let i = 0; i < length; i++) a[i] = rng.uniform(lo, hi);
  return a;
}

/** Random small integers (times `step`): sums of a few of them are exact in float32 in any order. */
export function randomIntegers32(rng: Rng, length: number, lo: number, hi: number, step = 1): Float32Array {
  const a = new Float32Array(length);
  for (let i = 0; i < length; i++) a[i] = rng.int(lo, hi) * step;
  return a;
}

export function toFloat64(a: ArrayLike<number>): Float64Array {
  return Float64Array.from(a);
}

// ---------------------------------------------------------------------------------------------
// Error measures

export function maxAbsError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (d > m || Number.isNaN(d)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

/** max |a - b| / max(|b|, floor): floor keeps near-zero references from dominating. */
export function maxRelError(a: ArrayLike<number>, b: ArrayLike<number>, floor = 1e-30): number {
  if (a.length !== b.length) throw new Error(`length mismatch ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]) / Math.max(Math.abs(b[i]), floor);
    if (d > m || Number.isNaN(d)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/**
 * A reference result of a sum-of-products op: `value` (float64) and, per element, `scale` =
 * sqrt(sum of the squared terms) with `terms` the largest number of terms any element sums. A
 * float32 sum of K terms has a rounding error of about sqrt(K) * u * scale (random-walk growth),
 * which is how the suites size their tolerances.
 */
export interface SumResult {
  value: Float64Array;
  scale: Float64Array;
  terms: number;
}

function finishScale(sq: Float64Array): Float64Array {
  for (let i = 0; i < sq.length; i++) sq[i] = Math.sqrt(sq[i]);
  return sq;
}

// ---------------------------------------------------------------------------------------------
// conv2d (cross-correlation, NCHW, zero padding)

export interface ConvGeometry {
  n: number;
  cin: number;
  h: number;
  w: number;
  cout: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  ph: number;
  pw: number;
  oh: number;
  ow: number;
}

export function convGeometry(
  n: number,
  cin: number,
  h: number,
  w: number,
  cout: number,
  kernel: Pair,
  stride: Pair,
  padding: Pair,
): ConvGeometry {
  const [kh, kw] = kernel;
  const [sh, sw] = stride;
  const [ph, pw] = padding;
  const oh = Math.floor((h + 2 * ph - kh) / sh) + 1;
  const ow = Math.floor((w + 2 * pw - kw) / sw) + 1;
  if (!(oh >= 1 && ow >= 1)) throw new Error('conv geometry with an empty output');
  return { n, cin, h, w, cout, kh, kw, sh, sw, ph, pw, oh, ow };
}

/**
 * y[n, co, oy, ox] = b[co] + sum_{ci, ky, kx} x[n, ci, oy*sh + ky - ph, ox*sw + kx - pw] * w[co, ci, ky, kx],
 * where x outside the image is zero. (Loops ordered so that the innermost runs over the output
 * row; each term is still exactly the one in the definition.)
 */
export function conv2dForwardRef(
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  b: ArrayLike<number> | null,
  g: ConvGeometry,
): SumResult {
  const xd = toFloat64(x);
  const wd = toFloat64(w);
  const { n: N, cin, h: H, w: W, cout, kh, kw, sh, sw, ph, pw, oh, ow } = g;
  const y = new Float64Array(N * cout * oh * ow);
  const sq = new Float64Array(y.length);
  for (let n = 0; n < N; n++)
    for (let co = 0; co < cout; co++) {
      const yb = (n * cout + co) * oh * ow;
      if (b) {
        for (let i = 0; i < oh * ow; i++) {
          y[yb + i] = b[co];
          sq[yb + i] = b[co] * b[co];
        }
      }
      for (let ci = 0; ci < cin; ci++) {
        const xb = (n * cin + ci) * H * W;
        for (let ky = 0; ky < kh; ky++)
          for (let kx = 0; kx < kw; kx++) {
            const wv = wd[((co * cin + ci) * kh + ky) * kw + kx];
            for (let oy = 0; oy < oh; oy++) {
              const iy = oy * sh + ky - ph;
              if (iy < 0 || iy >= H) continue;
              for (let ox = 0; ox < ow; ox++) {
                const ix = ox * sw + kx - pw;
                if (ix < 0 || ix >= W) continue;
                const t = xd[xb + iy * W + ix] * wv;
                y[yb + oy * ow + ox] += t;
                sq[yb + oy * ow + ox] += t * t;
              }
            }
          }
      }
    }
  return { value: y, scale: finishScale(sq), terms: cin * kh * kw + (b ? 1 : 0) };
}

/**
 * dx = d(sum(y * dy)) / dx: every product x[...] * w[...] of the forward pass sends dy * w back to
 * the x element it read (the transpose of the forward index map, as a scatter).
 */
export function conv2dBackwardInputRef(dy: ArrayLike<number>, w: ArrayLike<number>, g: ConvGeometry): SumResult {
  const dyd = toFloat64(dy);
  const wd = toFloat64(w);
  const { n: N, cin, h: H, w: W, cout, kh, kw, sh, sw, ph, pw, oh, ow } = g;
  const dx = new Float64Array(N * cin * H * W);
  const sq = new Float64Array(dx.length);
  for (let n = 0; n < N; n++)
    for (let co = 0; co < cout; co++) {
      const yb = (n * cout + co) * oh * ow;
      for (let ci = 0; ci < cin; ci++) {
        const xb = (n * cin + ci) * H * W;
        for (let ky = 0; ky < kh; ky++)
          for (let kx = 0; kx < kw; kx++) {
            const wv = wd[((co * cin + ci) * kh + ky) * kw + kx];
            for (let oy = 0; oy < oh; oy++) {
              const iy = oy * sh + ky - ph;
              if (iy < 0 || iy >= H) continue;
              for (let ox = 0; ox < ow; ox++) {
                const ix = ox * sw + kx - pw;
                if (ix < 0 || ix >= W) continue;
                const t = dyd[yb + oy * ow + ox] * wv;
                dx[xb + iy * W + ix] += t;
                sq[xb + iy * W + ix] += t * t;
              }
            }
          }
      }
    }
  return { value: dx, scale: finishScale(sq), terms: cout * kh * kw };
}

/** dw[co, ci, ky, kx] = sum_{n, oy, ox} x[n, ci, iy, ix] * dy[n, co, oy, ox]; db[co] = sum_{n, oy, ox} dy[n, co, oy, ox]. */
export function conv2dBackwardWeightRef(
  x: ArrayLike<number>,
  dy: ArrayLike<number>,
  g: ConvGeometry,
): { weight: SumResult; bias: SumResult } {
  const xd = toFloat64(x);
  const dyd = toFloat64(dy);
  const { n: N, cin, h: H, w: W, cout, kh, kw, sh, sw, ph, pw, oh, ow } = g;
  const dw = new Float64Array(cout * cin * kh * kw);
  const sqw = new Float64Array(dw.length);
  const db = new Float64Array(cout);
  const sqb = new Float64Array(cout);
  for (let co = 0; co < cout; co++) {
    for (let ci = 0; ci < cin; ci++)
      for (let ky = 0; ky < kh; ky++)
        for (let kx = 0; kx < kw; kx++) {
          let acc = 0;
          let sq = 0;
          for (let n = 0; n < N; n++) {
            const xb = (n * cin + ci) * H * W;
            const yb = (n * cout + co) * oh * ow;
            for (let oy = 0; oy < oh; oy++) {
              const iy = oy * sh + ky - ph;
              if (iy < 0 || iy >= H) continue;
              for (let ox = 0; ox < ow; ox++) {
                const ix = ox * sw + kx - pw;
                if (ix < 0 || ix >= W) continue;
                const t = xd[xb + iy * W + ix] * dyd[yb + oy * ow + ox];
                acc += t;
                sq += t * t;
              }
            }
          }
          const i = ((co * cin + ci) * kh + ky) * kw + kx;
          dw[i] = acc;
          sqw[i] = sq;
        }
    for (let n = 0; n < N; n++) {
      const yb = (n * cout + co) * oh * ow;
      for (let i = 0; i < oh * ow; i++) {
        db[co] += dyd[yb + i];
        sqb[co] += dyd[yb + i] * dyd[yb + i];
      }
    }
  }
  const terms = N * oh * ow;
  return {
    weight: { value: dw, scale: finishScale(sqw), terms },
    bias: { value: db, scale: finishScale(sqb), terms },
  };
}

// ---------------------------------------------------------------------------------------------
// max-pool 2d (no padding)

export interface PoolGeometry {
  n: number;
  c: number;
  h: number;
  w: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  oh: number;
  ow: number;
}

export function poolGeometry(n: number, c: number, h: number, w: number, kernel: Pair, stride: Pair): PoolGeometry {
  const [kh, kw] = kernel;
  const [sh, sw] = stride;
  if (h < kh || w < kw) throw new Error('pool window larger than the input');
  return { n, c, h, w, kh, kw, sh, sw, oh: Math.floor((h - kh) / sh) + 1, ow: Math.floor((w - kw) / sw) + 1 };
}

/**
 * The rule of native/include/dcl/kernels.h, literally: start from best = -inf with the window's
 * first element as the winner, walk the window row by row, take an element only when it is
 * strictly greater than the best so far (so NaN never takes over and ties keep the first); the
 * output is the winner's value. argmax is the winner's index (ih * W + iw) inside its plane.
 */
export function maxPool2dForwardRef(x: ArrayLike<number>, g: PoolGeometry): { value: Float64Array; argmax: Int32Array } {
  const { n: N, c: C, h: H, w: W, kh, kw, sh, sw, oh, ow } = g;
  const y = new Float64Array(N * C * oh * ow);
  const argmax = new Int32Array(y.length);
  for (let p = 0; p < N * C; p++) {
    const xb = p * H * W;
    for (let oy = 0; oy < oh; oy++)
      for (let ox = 0; ox < ow; ox++) {
        let best = -Infinity;
        let bestIndex = oy * sh * W + ox * sw;
        for (let ky = 0; ky < kh; ky++)
          for (let kx = 0; kx < kw; kx++) {
            const idx = (oy * sh + ky) * W + ox * sw + kx;
            const v = x[xb + idx];
            if (v > best) {
              best = v;
              bestIndex = idx;
            }
          }
        const o = p * oh * ow + oy * ow + ox;
        y[o] = x[xb + bestIndex];
        argmax[o] = bestIndex;
      }
  }
  return { value: y, argmax };
}

/** dx[plane, argmax[i]] += dy[i]: each window's gradient goes to its winner; overlaps add up. */
export function maxPool2dBackwardRef(dy: ArrayLike<number>, argmax: Int32Array, g: PoolGeometry): Float64Array {
  const { n: N, c: C, h: H, w: W, oh, ow } = g;
  const dx = new Float64Array(N * C * H * W);
  for (let p = 0; p < N * C; p++)
    for (let i = 0; i < oh * ow; i++) dx[p * H * W + argmax[p * oh * ow + i]] += dy[p * oh * ow + i];
  return dx;
}

// ---------------------------------------------------------------------------------------------
// Activations

export function absTanhRef(x: ArrayLike<number>): Float64Array {
  const y = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) y[i] = Math.abs(Math.tanh(x[i]));
  return y;
}

export function sigmoidRef(x: ArrayLike<number>): Float64Array {
  const y = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) y[i] = 1 / (1 + Math.exp(-x[i]));
  return y;
}

/** dx = dy * sign(x) * (1 - y^2) with sign(0) = 0 (the y given, not recomputed). */
export function absTanhBackwardRef(dy: ArrayLike<number>, x: ArrayLike<number>, y: ArrayLike<number>): Float64Array {
  const dx = new Float64Array(dy.length);
  for (let i = 0; i < dy.length; i++) {
    const sign = x[i] > 0 ? 1 : x[i] < 0 ? -1 : 0;
    dx[i] = dy[i] * sign * (1 - y[i] * y[i]);
  }
  return dx;
}

/** dx = dy * y * (1 - y) (the y given, not recomputed). */
export function sigmoidBackwardRef(dy: ArrayLike<number>, y: ArrayLike<number>): Float64Array {
  const dx = new Float64Array(dy.length);
  for (let i = 0; i < dy.length; i++) dx[i] = dy[i] * y[i] * (1 - y[i]);
  return dx;
}

// ---------------------------------------------------------------------------------------------
// Linear: y = x w^T + b, x [N, in], w [out, in]

export function linearForwardRef(
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  b: ArrayLike<number> | null,
  n: number,
  inF: number,
  outF: number,
): SumResult {
  const y = new Float64Array(n * outF);
  const sq = new Float64Array(y.length);
  for (let r = 0; r < n; r++)
    for (let o = 0; o < outF; o++) {
      let acc = b ? b[o] : 0;
      let s = b ? b[o] * b[o] : 0;
      for (let i = 0; i < inF; i++) {
        const t = x[r * inF + i] * w[o * inF + i];
        acc += t;
        s += t * t;
      }
      y[r * outF + o] = acc;
      sq[r * outF + o] = s;
    }
  return { value: y, scale: finishScale(sq), terms: inF + (b ? 1 : 0) };
}

/** dx[r, i] = sum_o dy[r, o] * w[o, i]. */
export function linearBackwardInputRef(dy: ArrayLike<number>, w: ArrayLike<number>, n: number, inF: number, outF: number): SumResult {
  const dx = new Float64Array(n * inF);
  const sq = new Float64Array(dx.length);
  for (let r = 0; r < n; r++)
    for (let i = 0; i < inF; i++) {
      let acc = 0;
      let s = 0;
      for (let o = 0; o < outF; o++) {
        const t = dy[r * outF + o] * w[o * inF + i];
        acc += t;
        s += t * t;
      }
      dx[r * inF + i] = acc;
      sq[r * inF + i] = s;
    }
  return { value: dx, scale: finishScale(sq), terms: outF };
}

/** dw[o, i] = sum_r dy[r, o] * x[r, i]; db[o] = sum_r dy[r, o]. */
export function linearBackwardWeightRef(
  x: ArrayLike<number>,
  dy: ArrayLike<number>,
  n: number,
  inF: number,
  outF: number,
): { weight: SumResult; bias: SumResult } {
  const dw = new Float64Array(outF * inF);
  const sqw = new Float64Array(dw.length);
  const db = new Float64Array(outF);
  const sqb = new Float64Array(outF);
  for (let o = 0; o < outF; o++) {
    for (let i = 0; i < inF; i++) {
      let acc = 0;
      let s = 0;
      for (let r = 0; r < n; r++) {
        const t = dy[r * outF + o] * x[r * inF + i];
        acc += t;
        s += t * t;
      }
      dw[o * inF + i] = acc;
      sqw[o * inF + i] = s;
    }
    for (let r = 0; r < n; r++) {
      db[o] += dy[r * outF + o];
      sqb[o] += dy[r * outF + o] * dy[r * outF + o];
    }
  }
  return {
    weight: { value: dw, scale: finishScale(sqw), terms: n },
    bias: { value: db, scale: finishScale(sqb), terms: n },
  };
}

// ---------------------------------------------------------------------------------------------
// Central finite differences

export interface GradientCheck {
  /** What is checked (shown in a failure). */
  label: string;
  /** The variable, in float64; it is perturbed in place and restored. */
  point: Float64Array;
  /** The float64 reference forward as a function of the variable (other inputs captured). */
  forward: (point: Float64Array) => ArrayLike<number>;
  /** The fixed random weights of the scalar loss L = sum(forward(point) * R). */
  R: ArrayLike<number>;
  /** The analytic gradient dL/dpoint under test (from a native backward kernel, with dy = R). */
  analytic: ArrayLike<number>;
  /** Which coordinates to check (a random subset for large tensors). */
  indices: readonly number[];
  /** Step of the central difference (float64, so 1e-3..1e-4 keeps the difference noise ~1e-12). */
  h: number;
  /** Accepted |analytic - fd| = atol + rtol * |fd|. */
  rtol: number;
  atol: number;
}

/**
 * Compares an analytic gradient with (L(x + h e_i) - L(x - h e_i)) / 2h at the given coordinates,
 * L evaluated with a float64 reference. Returns the numeric gradients; throws an Error naming the
 * worst coordinates when any is outside atol + rtol * |fd|.
 */
export function checkGradient(c: GradientCheck): Float64Array {
  const loss = (p: Float64Array) => dot(c.forward(p), c.R);
  const fd = new Float64Array(c.indices.length);
  const bad: string[] = [];
  let worst = 0;
  c.indices.forEach((i, k) => {
    const x0 = c.point[i];
    c.point[i] = x0 + c.h;
    const up = loss(c.point);
    c.point[i] = x0 - c.h;
    const down = loss(c.point);
    c.point[i] = x0;
    fd[k] = (up - down) / (2 * c.h);
    const err = Math.abs(c.analytic[i] - fd[k]);
    const tol = c.atol + c.rtol * Math.abs(fd[k]);
    worst = Math.max(worst, err / tol);
    if (!(err <= tol)) bad.push(`[${i}] analytic ${c.analytic[i]} vs finite difference ${fd[k]} (|diff| ${err.toExponential(2)} > tol ${tol.toExponential(2)})`);
  });
  if (bad.length > 0)
    throw new Error(
      `${c.label}: ${bad.length} of ${c.indices.length} gradient coordinates disagree with central finite differences ` +
        `(h=${c.h}, worst at ${worst.toFixed(1)}x the tolerance):\n  ${bad.slice(0, 6).join('\n  ')}`,
    );
  return fd;
}

// ---------------------------------------------------------------------------------------------
// Packed codes

/** xorshift32 uniform numbers in [0, 1): the seeded stream the code and index tests draw from. */
export function xorshift(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
}

/**
 * The layout distance of two packed codes, one field at a time in plain arithmetic: Hamming for
 * Q = 1 (or with metric 'hamming': popcount of a xor b), else L1 over the n Q-bit fields.
 */
export function codeDistanceRef(a: number, b: number, l: { n: number; q: number }, metric: 'l1' | 'layout' | 'hamming' = 'l1'): number {
  const ua = a >>> 0;
  const ub = b >>> 0;
  if (metric === 'hamming' || l.q === 1) {
    const x = (ua ^ ub) >>> 0;
    let d = 0;
    for (let i = 0; i < 32; i++) if (Math.floor(x / 2 ** i) % 2 === 1) d++;
    return d;
  }
  const levels = 2 ** l.q;
  let d = 0;
  for (let i = 0; i < l.n; i++) d += Math.abs((Math.floor(ua / 2 ** (i * l.q)) % levels) - (Math.floor(ub / 2 ** (i * l.q)) % levels));
  return d;
}
