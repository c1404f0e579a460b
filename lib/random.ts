// Seeded random numbers: a xoshiro128** generator written from its published description
// (Blackman and Vigna, "Scrambled linear pseudorandom number generators", 2018/2021): 128 bits of
// state in four uint32 words, period 2^128 - 1, a '**' scrambler (multiply by 5, rotate by 7,
// multiply by 9) on the second word. The state is filled from the seed by splitmix32 steps, so that
// nearby seeds (0, 1, 2, ...) give unrelated streams.
//
// Reproducibility: everything here is 32-bit integer arithmetic (Math.imul, shifts) and IEEE-754
// double operations that JavaScript defines exactly, so a seed gives the same numbers on every
// machine and Node.js version. A training run seeded the same way repeats exactly when it also runs
// the same instruction set (DCL_ISA) and the same number of native threads (DCL_THREADS): the
// kernels split their sums by thread count and ISA, which changes float32 rounding, and nothing
// else in a run depends on the machine.
import { DclError } from './errors.js';
import { describe } from './validate.js';

const TWO_POW_32 = 4294967296;
const TWO_POW_MINUS_53 = 2 ** -53;

/** The full state of an Rng: restore it with `Rng.fromState` to continue the exact same stream. */
export interface RngState {
  /** The four 32-bit words of xoshiro128** (unsigned). */
  words: [number, number, number, number];
  /** The second value of the last Box-Muller pair, not yet returned by normal(); null when none. */
  spareNormal: number | null;
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** One splitmix32 output for the counter value z (a 32-bit mixing function with good avalanche). */
function splitmix32(z: number): number {
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

function checkSeed(seed: unknown): number {
  if (typeof seed !== 'number' || !Number.isSafeInteger(seed) || seed < 0)
    throw new DclError('E_ARG', `Expected a non-negative safe integer for seed but received ${describe(seed)}`);
  return seed;
}

function checkRange(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value))
    throw new DclError('E_ARG', `Expected a finite number for ${name} but received ${describe(value)}`);
  return value;
}

/**
 * A seeded generator. `new Rng(seed)` for any non-negative safe integer; the same seed always gives
 * the same sequence. Not for cryptography.
 */
export class Rng {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;
  private spare: number | null = null;

  constructor(seed = 0) {
    checkSeed(seed);
    // The seed's low and high 32-bit halves feed two splitmix32 counters; their outputs are combined
    // so that every bit of a 53-bit seed matters.
    const lo = seed >>> 0;
    const hi = Math.floor(seed / TWO_POW_32) >>> 0;
    let a = lo;
    let b = (hi ^ 0x5bd1e995) >>> 0;
    const next = () => {
      a = (a + 0x9e3779b9) >>> 0;
      b = (b + 0x7f4a7c15) >>> 0;
      return (splitmix32(a) ^ rotl(splitmix32(b), 13)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
    // The all-zero state is the one the generator cannot leave.
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 0x9e3779b9;
  }

  /** A generator that continues from a saved state (see state()). */
  static fromState(state: RngState): Rng {
    const words = state?.words;
    if (!Array.isArray(words) || words.length !== 4 || !words.every((w) => Number.isInteger(w) && w >= 0 && w < TWO_POW_32))
      throw new DclError('E_ARG', `Expected four unsigned 32-bit integers for state.words but received ${describe(words)}`);
    if ((words[0] | words[1] | words[2] | words[3]) === 0)
      throw new DclError('E_ARG', 'Expected a state that is not all zero for state.words but received [0, 0, 0, 0]');
    const spare = state.spareNormal;
    if (spare !== null && (typeof spare !== 'number' || !Number.isFinite(spare)))
      throw new DclError('E_ARG', `Expected null or a finite number for state.spareNormal but received ${describe(spare)}`);
    const rng = new Rng(0);
    [rng.s0, rng.s1, rng.s2, rng.s3] = words;
    rng.spare = spare;
    return rng;
  }

  /** A copy of the state (plain numbers: JSON-safe). */
  state(): RngState {
    return { words: [this.s0 >>> 0, this.s1 >>> 0, this.s2 >>> 0, this.s3 >>> 0], spareNormal: this.spare };
  }

  /** A new, independent generator seeded from this one's next outputs (this one advances). */
  fork(): Rng {
    const child = new Rng(0);
    child.s0 = this.nextUint32();
    child.s1 = this.nextUint32();
    child.s2 = this.nextUint32();
    child.s3 = this.nextUint32();
    if ((child.s0 | child.s1 | child.s2 | child.s3) === 0) child.s0 = 0x9e3779b9;
    return child;
  }

  /** The next 32 random bits as an unsigned integer. */
  nextUint32(): number {
    const s0 = this.s0;
    const s1 = this.s1;
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    let s2 = this.s2 ^ s0;
    let s3 = this.s3 ^ s1;
    this.s1 = s1 ^ s2;
    this.s0 = s0 ^ s3;
    s2 ^= t;
    s3 = rotl(s3, 11);
    this.s2 = s2;
    this.s3 = s3;
    return result;
  }

  /** Uniform in [0, 1) with 53 random bits (every double of the form k * 2^-53). */
  float(): number {
    const hi = this.nextUint32() >>> 5; // 27 bits
    const lo = this.nextUint32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) * TWO_POW_MINUS_53;
  }

  /** Uniform in [lo, hi) (default [0, 1)). */
  uniform(lo = 0, hi = 1): number {
    return lo + (hi - lo) * this.float();
  }

  /**
   * A uniform integer in [lo, hi], both included, without modulo bias (rejection sampling).
   * hi - lo + 1 may be at most 2^32.
   */
  int(lo: number, hi: number): number {
    if (!Number.isSafeInteger(lo) || !Number.isSafeInteger(hi) || hi < lo || hi - lo + 1 > TWO_POW_32)
      throw new DclError('E_ARG', `Expected integers lo <= hi with hi - lo < 2^32 for int(lo, hi) but received ${describe(lo)}, ${describe(hi)}`);
    return lo + this.below(hi - lo + 1);
  }

  /** A uniform integer in [0, n) for 1 <= n <= 2^32 (no validation: internal fast path). */
  private below(n: number): number {
    if (n === TWO_POW_32) return this.nextUint32();
    // Accept u < limit, the largest multiple of n not above 2^32: each residue equally likely.
    const limit = TWO_POW_32 - (TWO_POW_32 % n);
    let u = this.nextUint32();
    while (u >= limit) u = this.nextUint32();
    return u % n;
  }

  /** True with probability p. */
  bernoulli(p = 0.5): boolean {
    return this.float() < p;
  }

  /**
   * A normal sample (Box-Muller: two uniforms give two independent normals; the second is kept
   * for the next call and is part of the state).
   */
  normal(mean = 0, std = 1): number {
    if (this.spare !== null) {
      const z = this.spare;
      this.spare = null;
      return mean + std * z;
    }
    // u in (0, 1] so that log(u) is finite.
    const u = 1 - this.float();
    const v = this.float();
    const r = Math.sqrt(-2 * Math.log(u));
    const angle = 2 * Math.PI * v;
    this.spare = r * Math.sin(angle);
    return mean + std * r * Math.cos(angle);
  }

  /** Fills `out` with uniform values in [lo, hi) and returns it. */
  fillUniform<T extends Float32Array | Float64Array>(out: T, lo = 0, hi = 1): T {
    checkRange(lo, 'lo');
    checkRange(hi, 'hi');
    for (let i = 0; i < out.length; i++) out[i] = lo + (hi - lo) * this.float();
    return out;
  }

  /** Fills `out` with normal values N(mean, std^2) and returns it. */
  fillNormal<T extends Float32Array | Float64Array>(out: T, mean = 0, std = 1): T {
    checkRange(mean, 'mean');
    checkRange(std, 'std');
    for (let i = 0; i < out.length; i++) out[i] = this.normal(mean, std);
    return out;
  }

  /** Shuffles `values` in place (Fisher-Yates: every order equally likely) and returns it. */
  shuffle<A extends { length: number; [i: number]: unknown }>(values: A): A {
    for (let i = values.length - 1; i > 0; i--) {
      const j = this.below(i + 1);
      const t = values[i];
      values[i] = values[j];
      values[j] = t;
    }
    return values;
  }

  /** A random permutation of 0 .. n-1. */
  permutation(n: number): Int32Array {
    if (!Number.isSafeInteger(n) || n < 0 || n > 2 ** 31 - 1)
      throw new DclError('E_ARG', `Expected a non-negative integer below 2^31 for n but received ${describe(n)}`);
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    return this.shuffle(p);
  }

  /** One element of `values`, each equally likely. */
  choice<T>(values: ArrayLike<T>): T {
    if (values === null || typeof values !== 'object' || typeof values.length !== 'number' || values.length === 0)
      throw new DclError('E_ARG', `Expected a non-empty array for values but received ${describe(values)}`);
    return values[this.below(values.length)];
  }

  /**
   * k indices from [0, n): distinct (in random order) unless `replace` is true. Without
   * replacement k may be at most n.
   */
  sample(n: number, k: number, options: { replace?: boolean } = {}): Int32Array {
    if (!Number.isSafeInteger(n) || n < 1 || n > 2 ** 31 - 1)
      throw new DclError('E_ARG', `Expected a positive integer below 2^31 for n but received ${describe(n)}`);
    const replace = options.replace ?? false;
    if (!Number.isSafeInteger(k) || k < 0 || (!replace && k > n))
      throw new DclError('E_ARG', `Expected an integer from 0 to ${replace ? 'any size' : n} for k but received ${describe(k)}`);
    const out = new Int32Array(k);
    if (replace) {
      for (let i = 0; i < k; i++) out[i] = this.below(n);
      return out;
    }
    // Partial Fisher-Yates over 0..n-1 when k is a large part of n; otherwise rejection of
    // repeats with a Set (k draws on average close to k).
    if (k * 4 >= n) {
      const p = new Int32Array(n);
      for (let i = 0; i < n; i++) p[i] = i;
      for (let i = 0; i < k; i++) {
        const j = i + this.below(n - i);
        const t = p[i];
        p[i] = p[j];
        p[j] = t;
        out[i] = p[i];
      }
      return out;
    }
    const seen = new Set<number>();
    for (let i = 0; i < k; ) {
      const j = this.below(n);
      if (seen.has(j)) continue;
      seen.add(j);
      out[i++] = j;
    }
    return out;
  }
}

let defaultRng = new Rng(0);

/** The generator used where no `rng` is passed (layer initialisation): seeded 0 at start-up. */
export function defaultGenerator(): Rng {
  return defaultRng;
}

/** Re-seeds the default generator (as torch.manual_seed does), and returns it. */
export function manualSeed(seed: number): Rng {
  defaultRng = new Rng(checkSeed(seed));
  return defaultRng;
}
