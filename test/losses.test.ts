// The compactness losses over pairs (lib/losses.ts) on every ISA path:
// - hammingDpLoss (dynamic programming over the Hamming distance of random binary codes) against
//   exhaustive enumeration of all 2^n patterns of differing bits for n = 1..12, its gradients
//   against central finite differences of that enumeration, a Monte Carlo estimate at n = 32 (4
//   standard errors), and a float64 reference of the recursion and its reverse pass at awkward sizes
//   (P = 1, 7, 9, 17, 33, 1000; n = 1, 5, 16, 31, 32, 64) where the SIMD paths (4 and 8 pairs per
//   vector) have every kind of tail;
// - pairL1Loss against a float64 reference and finite differences away from ties, and the sign
//   rule at ties;
// - exact determinism over thread counts, reductions, weights, and argument validation.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { capabilities, DclError, hammingDpLoss, pairL1Loss, pairLossAt, setThreads, softplus, softplusDerivative, withIsa } from '../lib/index.js';
import type { HammingDpLossResult, PairL1LossResult } from '../lib/index.js';
import { native } from '../lib/native.js';
import { Rng } from './reference.js';
import { assertClose, assertSame, forEachIsa, isasUnderTest } from './helpers.js';

const test = suite('losses');

// ---------------------------------------------------------------------------------------------
// Float64 references

/** Probability that bit i differs between two images. */
function qOf(p1: number, p2: number): number {
  return p1 + p2 - 2 * p1 * p2;
}

function lossAt(d: number, label: number, alpha: number, beta: number): number {
  return softplus(-label * (alpha * d - beta));
}

/** dL/dy at y = alpha d - beta, L = softplus(-l y). */
function lossSlope(d: number, label: number, alpha: number, beta: number): number {
  return -label * softplusDerivative(-label * (alpha * d - beta));
}

/** E[L] of one pair by enumerating all 2^n patterns of which bits differ (exact, for n <= 16). */
function enumeratePair(p: ArrayLike<number>, n: number, a: number, b: number, label: number, alpha: number, beta: number): number {
  const q = new Float64Array(n);
  for (let i = 0; i < n; i++) q[i] = qOf(p[a * n + i], p[b * n + i]);
  const table = new Float64Array(n + 1);
  for (let j = 0; j <= n; j++) table[j] = lossAt(j, label, alpha, beta);
  let e = 0;
  for (let m = 0; m < 1 << n; m++) {
    let prob = 1;
    let d = 0;
    for (let i = 0; i < n; i++) {
      if ((m >> i) & 1) {
        prob *= q[i];
        d++;
      } else prob *= 1 - q[i];
    }
    e += prob * table[d];
  }
  return e;
}

interface PairBatch {
  N: number;
  n: number;
  pairs: Int32Array;
  labels: Float32Array;
  weights: Float32Array | null;
  alpha: number;
  beta: number;
}

interface BatchRef {
  perPair: Float64Array;
  loss: number;
  /** d(loss)/d input (mean reduction), float64. */
  grad: Float64Array;
  /** Per element, the sum of |per-pair terms| of grad (its rounding scale). */
  scale: Float64Array;
  gradAlpha: number;
  gradBeta: number;
}

function weightOf(b: PairBatch, k: number): number {
  return b.weights ? b.weights[k] : 1;
}

function weightSum(b: PairBatch): number {
  let s = 0;
  for (let k = 0; k < b.labels.length; k++) s += weightOf(b, k);
  return s;
}

/** The DP and its reverse pass, plainly, in float64 (mean reduction). */
function dpRef(p: ArrayLike<number>, b: PairBatch): BatchRef {
  const { N, n, pairs, labels, alpha, beta } = b;
  const P = labels.length;
  const ws = weightSum(b);
  const perPair = new Float64Array(P);
  const grad = new Float64Array(N * n);
  const scale = new Float64Array(N * n);
  let loss = 0;
  let gradAlpha = 0;
  let gradBeta = 0;
  for (let k = 0; k < P; k++) {
    const a = pairs[2 * k];
    const c = pairs[2 * k + 1];
    const l = labels[k];
    const q = Array.from({ length: n }, (_, i) => qOf(p[a * n + i], p[c * n + i]));
    const D: Float64Array[] = [Float64Array.of(1)];
    for (let i = 1; i <= n; i++) {
      const row = new Float64Array(i + 1);
      for (let j = 0; j <= i; j++) row[j] = (j < i ? (1 - q[i - 1]) * D[i - 1][j] : 0) + (j > 0 ? q[i - 1] * D[i - 1][j - 1] : 0);
      D.push(row);
    }
    let e = 0;
    let da = 0;
    let db = 0;
    for (let j = 0; j <= n; j++) {
      e += D[n][j] * lossAt(j, l, alpha, beta);
      da += D[n][j] * lossSlope(j, l, alpha, beta) * j;
      db -= D[n][j] * lossSlope(j, l, alpha, beta);
    }
    perPair[k] = e;
    const w = weightOf(b, k) / ws;
    loss += w * e;
    gradAlpha += w * da;
    gradBeta += w * db;
    // Reverse pass: Dbar[n][j] = L_j; Dbar[i-1][j] += (1-q_i) Dbar[i][j]; Dbar[i-1][j-1] += q_i Dbar[i][j].
    let Dbar = Float64Array.from({ length: n + 1 }, (_, j) => lossAt(j, l, alpha, beta));
    for (let i = n; i >= 1; i--) {
      let qbar = 0;
      const prev = new Float64Array(i);
      for (let j = 0; j <= i; j++) {
        qbar += Dbar[j] * ((j > 0 ? D[i - 1][j - 1] : 0) - (j < i ? D[i - 1][j] : 0));
        if (j < i) prev[j] += (1 - q[i - 1]) * Dbar[j];
        if (j > 0) prev[j - 1] += q[i - 1] * Dbar[j];
      }
      Dbar = prev;
      const ga = w * qbar * (1 - 2 * p[c * n + i - 1]);
      const gc = w * qbar * (1 - 2 * p[a * n + i - 1]);
      grad[a * n + i - 1] += ga;
      grad[c * n + i - 1] += gc;
      scale[a * n + i - 1] += Math.abs(ga);
      scale[c * n + i - 1] += Math.abs(gc);
    }
  }
  return { perPair, loss, grad, scale, gradAlpha, gradBeta };
}

/** The L1 pair loss in float64 (mean reduction); gradient directions from s. */
function l1Ref(f: ArrayLike<number>, s: ArrayLike<number>, b: PairBatch): BatchRef {
  const { N, n, pairs, labels, alpha, beta } = b;
  const P = labels.length;
  const ws = weightSum(b);
  const perPair = new Float64Array(P);
  const grad = new Float64Array(N * n);
  const scale = new Float64Array(N * n);
  let loss = 0;
  let gradAlpha = 0;
  let gradBeta = 0;
  for (let k = 0; k < P; k++) {
    const a = pairs[2 * k];
    const c = pairs[2 * k + 1];
    let d = 0;
    for (let i = 0; i < n; i++) d += Math.abs(f[a * n + i] - f[c * n + i]);
    const w = weightOf(b, k) / ws;
    perPair[k] = lossAt(d, labels[k], alpha, beta);
    loss += w * perPair[k];
    const slope = lossSlope(d, labels[k], alpha, beta);
    gradAlpha += w * slope * d;
    gradBeta -= w * slope;
    for (let i = 0; i < n; i++) {
      const g = w * slope * alpha * Math.sign(s[a * n + i] - s[c * n + i]);
      grad[a * n + i] += g;
      grad[c * n + i] -= g;
      scale[a * n + i] += Math.abs(g);
      scale[c * n + i] += Math.abs(g);
    }
  }
  return { perPair, loss, grad, scale, gradAlpha, gradBeta };
}

// ---------------------------------------------------------------------------------------------
// Random batches

/** N images, P pairs (some repeated images, one self-pair when P > 2), labels +-1, optional weights. */
function randomBatch(rng: Rng, N: number, n: number, P: number, weighted: boolean): PairBatch {
  const pairs = new Int32Array(2 * P);
  for (let k = 0; k < P; k++) {
    pairs[2 * k] = rng.int(0, N - 1);
    pairs[2 * k + 1] = k === 2 ? pairs[2 * k] : rng.int(0, N - 1);
  }
  const labels = Float32Array.from({ length: P }, () => (rng.bool() ? 1 : -1));
  const weights = weighted ? Float32Array.from({ length: P }, (_, k) => (k % 5 === 4 ? 0 : rng.uniform(0.25, 2))) : null;
  if (weights && P === 1) weights[0] = 0.75;
  const alpha = rng.uniform(0.05, 1.5);
  // beta / alpha somewhere in the distance range, so both sides of the loss are exercised.
  const beta = alpha * rng.uniform(0, n);
  return { N, n, pairs, labels, weights, alpha, beta };
}

/** Probabilities, with exact 0, 1 and 1/2 mixed in. */
function randomProbabilities(rng: Rng, length: number): Float32Array {
  return Float32Array.from({ length }, () => {
    const r = rng.float();
    if (r < 0.04) return 0;
    if (r < 0.08) return 1;
    if (r < 0.1) return 0.5;
    return rng.float();
  });
}

function runDp(p: Float32Array, b: PairBatch, extra: Record<string, unknown> = {}): HammingDpLossResult {
  return hammingDpLoss({
    p: { data: p, shape: [b.N, b.n] },
    pairs: b.pairs,
    labels: b.labels,
    ...(b.weights ? { weights: b.weights } : {}),
    alpha: b.alpha,
    beta: b.beta,
    ...extra,
  });
}

function runL1(f: Float32Array, s: Float32Array | null, b: PairBatch, extra: Record<string, unknown> = {}): PairL1LossResult {
  return pairL1Loss({
    values: { data: f, shape: [b.N, b.n] },
    ...(s ? { signs: { data: s, shape: [b.N, b.n] } } : {}),
    pairs: b.pairs,
    labels: b.labels,
    ...(b.weights ? { weights: b.weights } : {}),
    alpha: b.alpha,
    beta: b.beta,
    ...extra,
  });
}

/** float32 gradients: one rounding of a float64 value (2^-24 relative) plus float64 noise of the sum. */
function gradTolerance(ref: BatchRef): (i: number) => number {
  return (i) => 2 ** -23 * Math.abs(ref.grad[i]) + 1e-13 * ref.scale[i] + 1e-300;
}

function relTol(rel: number, floor = 0): (want: ArrayLike<number>) => (i: number) => number {
  return (want) => (i) => rel * Math.abs(want[i]) + floor;
}

function checkAgainstRef(label: string, got: HammingDpLossResult | PairL1LossResult, ref: BatchRef): void {
  assertClose(got.perPair, ref.perPair, relTol(1e-12, 1e-15)(ref.perPair), `${label}: per-pair loss`);
  assert.ok(Math.abs(got.loss - ref.loss) <= 1e-12 * Math.abs(ref.loss) + 1e-15, `${label}: loss ${got.loss} vs ${ref.loss}`);
  const grad = 'gradP' in got ? got.gradP : got.gradValues;
  assert.ok(grad, `${label}: gradient missing`);
  assertClose(grad.data, ref.grad, gradTolerance(ref), `${label}: gradient`);
  const scaleA = Math.abs(ref.gradAlpha) + 1e-12;
  const scaleB = Math.abs(ref.gradBeta) + 1e-12;
  assert.ok(Math.abs(got.gradAlpha - ref.gradAlpha) <= 1e-11 * scaleA, `${label}: gradAlpha ${got.gradAlpha} vs ${ref.gradAlpha}`);
  assert.ok(Math.abs(got.gradBeta - ref.gradBeta) <= 1e-11 * scaleB, `${label}: gradBeta ${got.gradBeta} vs ${ref.gradBeta}`);
}

// ---------------------------------------------------------------------------------------------
// hammingDpLoss: exactness

/** Worst relative difference of the DP (any ISA) against enumeration, for the report. */
let worstEnumeration = 0;

test('hammingDpLoss equals exhaustive enumeration of all 2^n difference patterns, n = 1..12', () => {
  for (let n = 1; n <= 12; n++) {
    const rng = new Rng(100 + n);
    const b = randomBatch(rng, 6, n, 9, n % 2 === 0);
    const p = randomProbabilities(rng, b.N * n);
    const want = Float64Array.from({ length: 9 }, (_, k) => enumeratePair(p, n, b.pairs[2 * k], b.pairs[2 * k + 1], b.labels[k], b.alpha, b.beta));
    forEachIsa(() => {
      const got = runDp(p, b);
      for (let k = 0; k < want.length; k++) worstEnumeration = Math.max(worstEnumeration, Math.abs(got.perPair[k] - want[k]) / Math.abs(want[k]));
      assertClose(got.perPair, want, relTol(1e-13)(want), `n=${n}: DP vs enumeration`);
    });
  }
  assert.ok(worstEnumeration < 1e-13);
});

test('hammingDpLoss gradients equal central finite differences of the enumerated loss, n = 1..12', () => {
  // The enumerated loss is a polynomial of degree <= 2 in each p coordinate (degree 1 unless the
  // image is paired with itself), so central differences are exact up to float64 rounding: the
  // tolerance is the float32 rounding of gradP. alpha and beta enter through softplus: step 1e-5,
  // truncation error ~1e-11.
  for (let n = 1; n <= 12; n += n < 4 ? 1 : 4) {
    const rng = new Rng(200 + n);
    const b = randomBatch(rng, 5, n, 7, true);
    const p = randomProbabilities(rng, b.N * n);
    const p64 = Float64Array.from(p);
    const ws = weightSum(b);
    const P = b.labels.length;
    const batchLoss = (pp: ArrayLike<number>, alpha: number, beta: number, only?: number) => {
      let s = 0;
      for (let k = 0; k < P; k++) {
        const a = b.pairs[2 * k];
        const c = b.pairs[2 * k + 1];
        if (only !== undefined && a !== only && c !== only) continue;
        s += (weightOf(b, k) / ws) * enumeratePair(pp, n, a, c, b.labels[k], alpha, beta);
      }
      return s;
    };
    const h = 1e-4;
    const fd = new Float64Array(b.N * n);
    for (let x = 0; x < b.N; x++)
      for (let i = 0; i < n; i++) {
        const at = x * n + i;
        const x0 = p64[at];
        p64[at] = x0 + h;
        const up = batchLoss(p64, b.alpha, b.beta, x);
        p64[at] = x0 - h;
        const down = batchLoss(p64, b.alpha, b.beta, x);
        p64[at] = x0;
        fd[at] = (up - down) / (2 * h);
      }
    const ha = 1e-5;
    const fdAlpha = (batchLoss(p64, b.alpha + ha, b.beta) - batchLoss(p64, b.alpha - ha, b.beta)) / (2 * ha);
    const fdBeta = (batchLoss(p64, b.alpha, b.beta + ha) - batchLoss(p64, b.alpha, b.beta - ha)) / (2 * ha);
    const gmax = Math.max(...Array.from(fd, Math.abs));
    forEachIsa(() => {
      const got = runDp(p, b);
      assert.ok(got.gradP);
      assertClose(got.gradP.data, fd, (i) => 2 ** -23 * Math.abs(fd[i]) + 1e-10 * gmax + 1e-14, `n=${n}: dE/dp vs finite differences`);
      assert.ok(Math.abs(got.gradAlpha - fdAlpha) <= 1e-7 * Math.abs(fdAlpha) + 1e-9, `n=${n}: dE/dalpha ${got.gradAlpha} vs ${fdAlpha}`);
      assert.ok(Math.abs(got.gradBeta - fdBeta) <= 1e-7 * Math.abs(fdBeta) + 1e-9, `n=${n}: dE/dbeta ${got.gradBeta} vs ${fdBeta}`);
    });
  }
});

test('hammingDpLoss at n = 32 agrees with a Monte Carlo estimate over sampled bits (4 standard errors)', () => {
  const n = 32;
  const rng = new Rng(32);
  const p = randomProbabilities(rng, 3 * n);
  const alpha = 0.3;
  const beta = alpha * 14;
  const cases: [number, number, number][] = [
    [0, 1, -1],
    [1, 2, 1],
    [0, 2, 1],
  ];
  const batch: PairBatch = { N: 3, n, pairs: Int32Array.from(cases.flatMap(([a, b]) => [a, b])), labels: Float32Array.from(cases.map((c) => c[2])), weights: null, alpha, beta };
  const M = 100_000;
  const estimates = cases.map(([a, b, l]) => {
    let sum = 0;
    let sq = 0;
    for (let t = 0; t < M; t++) {
      let d = 0;
      for (let i = 0; i < n; i++) if (rng.float() < p[a * n + i] !== rng.float() < p[b * n + i]) d++;
      const v = lossAt(d, l, alpha, beta);
      sum += v;
      sq += v * v;
    }
    const mean = sum / M;
    return { mean, se: Math.sqrt((sq / M - mean * mean) / (M - 1)) };
  });
  const ref = dpRef(p, batch);
  forEachIsa((isa) => {
    const got = runDp(p, batch);
    estimates.forEach((e, k) => {
      const z = (got.perPair[k] - e.mean) / e.se;
      if (isa === isasUnderTest()[0]) console.log(`    n=32 pair ${k}: DP ${got.perPair[k].toFixed(6)}, Monte Carlo ${e.mean.toFixed(6)} +- ${e.se.toFixed(6)} (z = ${z.toFixed(2)})`);
      assert.ok(Math.abs(z) <= 4, `pair ${k}: DP ${got.perPair[k]} vs Monte Carlo ${e.mean} +- ${e.se} (z = ${z})`);
    });
    checkAgainstRef('n=32', got, ref);
  });
});

// ---------------------------------------------------------------------------------------------
// hammingDpLoss: every ISA against the float64 reference and the serial kernel

const SIZES_P = [1, 7, 9, 17, 33, 1000];
const SIZES_N = [1, 5, 16, 31, 32, 64];
for (const P of SIZES_P) {
  test(`hammingDpLoss vs float64 reference and serial: P = ${P}, n = ${SIZES_N.join('/')}`, () => {
    for (const n of SIZES_N) {
      const rng = new Rng(P * 100 + n);
      const N = Math.max(1, Math.min(P, 50) - (P % 3));
      const b = randomBatch(rng, N, n, P, (P + n) % 2 === 0);
      const p = randomProbabilities(rng, N * n);
      const ref = dpRef(p, b);
      const serial = withIsa('serial', () => runDp(p, b));
      checkAgainstRef(`P=${P} n=${n} serial`, serial, ref);
      forEachIsa((isa) => {
        if (isa === 'serial') return;
        const got = runDp(p, b);
        checkAgainstRef(`P=${P} n=${n}`, got, ref);
        assertClose(got.perPair, serial.perPair, relTol(1e-13, 1e-16)(serial.perPair), `P=${P} n=${n}: per-pair vs serial`);
        assertClose(got.gradP!.data, serial.gradP!.data, gradTolerance(ref), `P=${P} n=${n}: gradP vs serial`);
      });
    }
  });
}

test('hammingDpLoss: forward-only, sum reduction, gradOutput and zero weights', () => {
  const rng = new Rng(7);
  const b = randomBatch(rng, 9, 13, 21, true);
  const p = randomProbabilities(rng, 9 * 13);
  forEachIsa(() => {
    const full = runDp(p, b);
    const fwd = runDp(p, b, { gradients: false });
    assertSame(fwd.perPair, full.perPair, 'forward-only per-pair loss');
    assert.is(fwd.loss, full.loss);
    assert.is(fwd.gradP, null);
    assert.ok(Number.isNaN(fwd.gradAlpha) && Number.isNaN(fwd.gradBeta));
    const ws = weightSum(b);
    let s = 0;
    for (let k = 0; k < 21; k++) s += weightOf(b, k) * full.perPair[k];
    assert.ok(Math.abs(full.loss - s / ws) <= 1e-15 * Math.abs(s / ws), 'mean = sum w L / sum w');
    const sum = runDp(p, b, { reduction: 'sum', gradOutput: -2.5 });
    assert.ok(Math.abs(sum.loss - s) <= 1e-14 * Math.abs(s));
    const k = -2.5 * ws;
    assertClose(sum.gradP!.data, Float64Array.from(full.gradP!.data, (v) => v * k), (i) => 2 ** -22 * Math.abs(full.gradP!.data[i] * k) + 1e-30, 'sum + gradOutput scales gradP');
    assert.ok(Math.abs(sum.gradAlpha - k * full.gradAlpha) <= 1e-13 * Math.abs(k * full.gradAlpha));
    // Pairs of weight 0 add nothing: drop them and the gradients (sum reduction) stay the same.
    const keep = [...Array(21).keys()].filter((i) => b.weights![i] !== 0);
    const sub: PairBatch = { ...b, pairs: Int32Array.from(keep.flatMap((i) => [b.pairs[2 * i], b.pairs[2 * i + 1]])), labels: Float32Array.from(keep.map((i) => b.labels[i])), weights: Float32Array.from(keep.map((i) => b.weights![i])) };
    const a1 = runDp(p, b, { reduction: 'sum' });
    const a2 = runDp(p, sub, { reduction: 'sum' });
    assertClose(a2.gradP!.data, a1.gradP!.data, (i) => 2 ** -22 * Math.abs(a1.gradP!.data[i]) + 1e-30, 'zero-weight pairs');
  });
});

test('hammingDpLoss: large alpha and distances far from the margin stay finite (stable softplus)', () => {
  const rng = new Rng(8);
  const n = 32;
  const p = randomProbabilities(rng, 4 * n);
  const b: PairBatch = { N: 4, n, pairs: Int32Array.of(0, 1, 2, 3, 1, 1), labels: Float32Array.of(1, -1, -1), weights: null, alpha: 400, beta: 3 };
  forEachIsa(() => {
    const r = runDp(p, b);
    for (const v of r.perPair) assert.ok(Number.isFinite(v) && v >= 0);
    for (const v of r.gradP!.data) assert.ok(Number.isFinite(v));
    checkAgainstRef('alpha 400', r, dpRef(p, b));
  });
});

// ---------------------------------------------------------------------------------------------
// pairL1Loss

test('pairL1Loss vs float64 reference at awkward sizes, every ISA', () => {
  for (const P of SIZES_P)
    for (const n of [1, 3, 4, 5, 8, 9, 16, 17, 31, 32, 33]) {
      const rng = new Rng(P * 1000 + n);
      const N = Math.max(1, Math.min(P, 40) - (P % 3));
      const b = randomBatch(rng, N, n, P, (P + n) % 2 === 1);
      // Rounded code values (ties common) with their unquantized values as the signs.
      const s = Float32Array.from({ length: N * n }, () => rng.uniform(0, 16));
      const f = Float32Array.from(s, Math.floor);
      b.alpha = 0.2 / Math.max(1, n / 4);
      b.beta = b.alpha * rng.uniform(0, 8 * n);
      const ref = l1Ref(f, s, b);
      const serial = withIsa('serial', () => runL1(f, s, b));
      forEachIsa(() => {
        const got = runL1(f, s, b);
        checkAgainstRef(`P=${P} n=${n}`, got, ref);
        // The sign accumulation is exact in every ISA and integer distances sum exactly: identical.
        assertSame(got.gradValues!.data, serial.gradValues!.data, `P=${P} n=${n}: gradValues vs serial`);
        assertSame(got.perPair, serial.perPair, `P=${P} n=${n}: per-pair vs serial`);
      });
    }
});

test('pairL1Loss gradients equal central finite differences (values away from ties)', () => {
  for (const n of [1, 7, 32]) {
    const rng = new Rng(300 + n);
    const N = 6;
    const b = randomBatch(rng, N, n, 11, true);
    b.pairs[4] = 0; // no self-pair: d is not differentiable there
    b.pairs[5] = 1;
    // Distinct values on a grid of 1/64 plus noise: every |difference| >= ~0.01 >> h.
    const perm = rng.permutation(N * n);
    const f = Float32Array.from(perm, (v) => v / 64 + rng.uniform(0, 0.005));
    b.alpha = 0.7 / n;
    b.beta = b.alpha * n;
    const f64 = Float64Array.from(f);
    const loss = (ff: ArrayLike<number>, alpha: number, beta: number) => l1Ref(ff, ff, { ...b, alpha, beta }).loss;
    const h = 1e-6;
    const fd = new Float64Array(N * n);
    for (let i = 0; i < N * n; i++) {
      const x0 = f64[i];
      f64[i] = x0 + h;
      const up = loss(f64, b.alpha, b.beta);
      f64[i] = x0 - h;
      const down = loss(f64, b.alpha, b.beta);
      f64[i] = x0;
      fd[i] = (up - down) / (2 * h);
    }
    const fdA = (loss(f64, b.alpha + h, b.beta) - loss(f64, b.alpha - h, b.beta)) / (2 * h);
    const fdB = (loss(f64, b.alpha, b.beta + h) - loss(f64, b.alpha, b.beta - h)) / (2 * h);
    const gmax = Math.max(...Array.from(fd, Math.abs));
    forEachIsa(() => {
      const got = runL1(f, null, b);
      assertClose(got.gradValues!.data, fd, (i) => 1e-6 * Math.abs(fd[i]) + 1e-7 * gmax, `n=${n}: d/dvalues vs finite differences`);
      assert.ok(Math.abs(got.gradAlpha - fdA) <= 1e-6 * Math.abs(fdA) + 1e-9, `n=${n}: d/dalpha ${got.gradAlpha} vs ${fdA}`);
      assert.ok(Math.abs(got.gradBeta - fdB) <= 1e-6 * Math.abs(fdB) + 1e-9, `n=${n}: d/dbeta ${got.gradBeta} vs ${fdB}`);
    });
  }
});

test('pairL1Loss: tied codes get their direction from signs; without signs a tie gets none', () => {
  // Two different people whose rounded codes are equal: distance 0, loss softplus(-(0 - beta)).
  const f = Float32Array.of(3, 5, 3, 5);
  const s = Float32Array.of(3.2, 5.9, 3.7, 5.1);
  const b: PairBatch = { N: 2, n: 2, pairs: Int32Array.of(0, 1), labels: Float32Array.of(1), weights: null, alpha: 0.5, beta: 2 };
  forEachIsa(() => {
    const withSigns = runL1(f, s, b);
    const slope = -softplusDerivative(-(0 * 0.5 - 2));
    const g = slope * 0.5; // dL/dd, pushes the codes apart: negative along sign(s_a - s_b)
    assert.equal(Array.from(withSigns.gradValues!.data), Array.from(Float32Array.of(-g, g, g, -g)));
    assert.ok(Math.abs(withSigns.perPair[0] - pairLossAt(0, 1, 0.5, 2)) < 1e-15);
    const without = runL1(f, null, b);
    assert.equal(Array.from(without.gradValues!.data), [0, 0, 0, 0]);
  });
});

test('hammingDpLoss over several gradient chunks (8192 pairs each) with a partial last block', () => {
  const rng = new Rng(12);
  const N = 700;
  const b = randomBatch(rng, N, 16, 8192 * 2 + 11, true);
  const p = randomProbabilities(rng, N * 16);
  const ref = dpRef(p, b);
  forEachIsa(() => checkAgainstRef('P=16395 n=16', runDp(p, b), ref));
});

test('native outputs in unaligned views are written exactly, never past their ends', () => {
  const SENTINEL = -7.25;
  const guarded64 = (length: number, offset: number) => {
    const buffer = new Float64Array(length + 40).fill(SENTINEL);
    return { view: buffer.subarray(offset, offset + length), buffer, offset };
  };
  const guarded32 = (length: number, offset: number) => {
    const buffer = new Float32Array(length + 40).fill(SENTINEL);
    return { view: buffer.subarray(offset, offset + length), buffer, offset };
  };
  const intact = (g: { buffer: Float64Array | Float32Array; view: { length: number }; offset: number }, label: string) => {
    for (let i = 0; i < g.buffer.length; i++)
      if ((i < g.offset || i >= g.offset + g.view.length) && g.buffer[i] !== SENTINEL) assert.unreachable(`${label}: wrote outside the output at ${i - g.offset}`);
  };
  forEachIsa(() => {
    for (const P of [1, 2, 3, 4, 5, 7, 8, 9, 15, 17]) {
      for (const n of [1, 3, 9]) {
        const rng = new Rng(P * 10 + n);
        const b = randomBatch(rng, 5, n, P, true);
        const p = randomProbabilities(rng, 5 * n);
        const ref = dpRef(p, b);
        const ws = weightSum(b);
        const loss = guarded64(P, 3);
        const scalars = guarded64(2, 5);
        const grad = guarded32(5 * n, 7);
        native.hammingDp(p, grad.view, b.pairs, b.labels, b.weights, loss.view, scalars.view, [5, n, P], b.alpha, b.beta, 1 / ws);
        intact(loss, `hammingDp loss P=${P} n=${n}`);
        intact(scalars, `hammingDp scalars P=${P} n=${n}`);
        intact(grad, `hammingDp grad P=${P} n=${n}`);
        assertClose(loss.view, ref.perPair, relTol(1e-12, 1e-15)(ref.perPair), `hammingDp loss P=${P} n=${n}`);
        assertClose(grad.view, ref.grad, gradTolerance(ref), `hammingDp grad P=${P} n=${n}`);
        const f = Float32Array.from({ length: 5 * n }, () => rng.int(0, 15));
        const lref = l1Ref(f, f, b);
        const l1loss = guarded64(P, 1);
        const l1grad = guarded32(5 * n, 2);
        native.pairL1Loss(f, f, l1grad.view, b.pairs, b.labels, b.weights, l1loss.view, scalars.view, [5, n, P], b.alpha, b.beta, 1 / ws);
        intact(l1loss, `pairL1Loss loss P=${P} n=${n}`);
        intact(l1grad, `pairL1Loss grad P=${P} n=${n}`);
        intact(scalars, `pairL1Loss scalars P=${P} n=${n}`);
        assertClose(l1loss.view, lref.perPair, relTol(1e-12, 1e-15)(lref.perPair), `pairL1Loss loss P=${P} n=${n}`);
        assertClose(l1grad.view, lref.grad, gradTolerance(lref), `pairL1Loss grad P=${P} n=${n}`);
      }
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Determinism over thread counts (chunked and parallel paths)

test('results are bit-identical for 1, 2 and 3 threads', () => {
  const before = capabilities().threads;
  const rng = new Rng(11);
  const N = 3000;
  const b = randomBatch(rng, N, 32, 20_003, true); // > 8192 pairs: several chunks, a partial block
  const p = randomProbabilities(rng, N * 32);
  const bl = randomBatch(rng, N, 16, 20_000, true);
  const f = Float32Array.from({ length: N * 16 }, () => rng.uniform(-1, 1));
  try {
    forEachIsa(() => {
      const runs = [1, 2, 3].map((t) => {
        setThreads(t);
        return { dp: runDp(p, b), l1: runL1(f, null, bl) };
      });
      for (let r = 1; r < runs.length; r++) {
        assertSame(runs[r].dp.perPair, runs[0].dp.perPair, `dp per-pair, ${r + 1} threads vs 1`);
        assertSame(runs[r].dp.gradP!.data, runs[0].dp.gradP!.data, `dp gradP, ${r + 1} threads vs 1`);
        assert.is(runs[r].dp.gradAlpha, runs[0].dp.gradAlpha);
        assert.is(runs[r].dp.gradBeta, runs[0].dp.gradBeta);
        assertSame(runs[r].l1.perPair, runs[0].l1.perPair, `l1 per-pair, ${r + 1} threads vs 1`);
        assertSame(runs[r].l1.gradValues!.data, runs[0].l1.gradValues!.data, `l1 grad, ${r + 1} threads vs 1`);
        assert.is(runs[r].l1.gradAlpha, runs[0].l1.gradAlpha);
      }
    });
  } finally {
    setThreads(before);
  }
});

// ---------------------------------------------------------------------------------------------
// Validation

function expectDclError(fn: () => unknown, code: string, pattern: RegExp, label: string): void {
  try {
    fn();
  } catch (error) {
    assert.instance(error, DclError, `${label}: not a DclError`);
    assert.is((error as DclError).code, code, `${label}: code (${(error as Error).message})`);
    assert.match((error as Error).message, pattern, `${label}: message`);
    return;
  }
  assert.unreachable(`${label}: expected a DclError ${code}`);
}

test('bad arguments give DclError E_ARG / E_SHAPE with "Expected ... for ... but received ..."', () => {
  const p = { data: new Float32Array(8).fill(0.5), shape: [2, 4] };
  const ok = { p, pairs: [[0, 1]] as [number, number][], labels: [1], alpha: 1, beta: 2 };
  const dp = (o: Record<string, unknown>) => hammingDpLoss({ ...ok, ...o } as never);
  expectDclError(() => hammingDpLoss(undefined as never), 'E_ARG', /Expected an options object .* for options but received undefined/, 'no options');
  expectDclError(() => dp({ extra: 1 }), 'E_ARG', /option 'extra'/, 'unknown option');
  expectDclError(() => dp({ p: { data: new Float32Array(3), shape: [3] } }), 'E_SHAPE', /rank 2 for options\.p/, 'p rank');
  expectDclError(() => dp({ p: { data: new Float32Array(65), shape: [1, 65] }, pairs: [[0, 0]] }), 'E_SHAPE', /at most 64 bits/, 'n > 64');
  expectDclError(() => dp({ p: { data: Float32Array.of(0.5, 1.5, 0, 0, 0, 0, 0, 0), shape: [2, 4] } }), 'E_ARG', /probabilities in \[0, 1\] \(at \[0, 1\]\) for options\.p but received 1\.5/, 'p > 1');
  expectDclError(() => dp({ p: { data: Float32Array.of(NaN, 0, 0, 0, 0, 0, 0, 0), shape: [2, 4] } }), 'E_ARG', /received NaN/, 'p NaN');
  expectDclError(() => dp({ pairs: [[0, 2]] }), 'E_ARG', /Expected an image index from 0 to 1 for options\.pairs\[0\]\[1\] but received 2/, 'index out of range');
  expectDclError(() => dp({ pairs: Int32Array.of(0, -1) }), 'E_ARG', /from 0 to 1 for options\.pairs but received -1 at index 1/, 'negative index');
  expectDclError(() => dp({ pairs: Int32Array.of(0, 1, 1) }), 'E_SHAPE', /even length for options\.pairs but received Int32Array of length 3/, 'odd pairs');
  expectDclError(() => dp({ pairs: [] }), 'E_SHAPE', /at least one pair/, 'no pairs');
  expectDclError(() => dp({ pairs: [[0, 1, 1]] }), 'E_ARG', /a pair \[a, b\]/, 'triple');
  expectDclError(() => dp({ pairs: [[0, 0.5]] }), 'E_ARG', /image index/, 'fractional index');
  expectDclError(() => dp({ pairs: 'x' }), 'E_ARG', /Int32Array/, 'pairs type');
  expectDclError(() => dp({ labels: [0] }), 'E_ARG', /-1 \(same person\) or \+1 \(different people\) for options\.labels\[0\] but received 0/, 'label 0');
  expectDclError(() => dp({ labels: [1, 1] }), 'E_SHAPE', /one value per pair \(1\) for options\.labels/, 'labels length');
  expectDclError(() => dp({ labels: ['1'] }), 'E_ARG', /numbers for options\.labels\[0\]/, 'label type');
  expectDclError(() => dp({ weights: [-1] }), 'E_ARG', /finite weights >= 0 for options\.weights\[0\] but received -1/, 'negative weight');
  expectDclError(() => dp({ weights: [0] }), 'E_ARG', /positive sum/, 'zero weights, mean');
  expectDclError(() => dp({ alpha: NaN }), 'E_ARG', /a finite number for options\.alpha but received NaN/, 'alpha NaN');
  expectDclError(() => dp({ beta: '2' }), 'E_ARG', /a finite number for options\.beta/, 'beta string');
  expectDclError(() => dp({ reduction: 'avg' }), 'E_ARG', /'mean' or 'sum' for options\.reduction/, 'reduction');
  expectDclError(() => dp({ gradients: 1 }), 'E_ARG', /a boolean for options\.gradients/, 'gradients');
  expectDclError(() => dp({ gradOutput: Infinity }), 'E_ARG', /options\.gradOutput/, 'gradOutput');
  // Zero weights are fine with the sum reduction.
  assert.is(dp({ weights: [0], reduction: 'sum' }).loss, 0);

  const l1 = (o: Record<string, unknown>) => pairL1Loss({ values: p, pairs: [[0, 1]], labels: [1], alpha: 1, beta: 2, ...o } as never);
  expectDclError(() => l1({ signs: { data: new Float32Array(4), shape: [1, 4] } }), 'E_SHAPE', /Expected shape \[2, 4\] \(that of options\.values\) for options\.signs but received shape \[1, 4\]/, 'signs shape');
  expectDclError(() => l1({ values: { data: Float32Array.of(0, Infinity, 0, 0, 0, 0, 0, 0), shape: [2, 4] } }), 'E_ARG', /finite values .* for options\.values but received Infinity/, 'values inf');
  expectDclError(() => l1({ p }), 'E_ARG', /option 'p'/, 'p is not an option of pairL1Loss');
  expectDclError(() => l1({ values: new Float32Array(8) }), 'E_ARG', /Tensor or \{ data: Float32Array, shape \} for options\.values/, 'bare array');
});

test.run();
