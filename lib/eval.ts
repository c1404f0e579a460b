// Face verification metrics (accuracy at a threshold, the best threshold, LFW's ten-fold protocol,
// ROC, equal error rate), the PCA baseline, and a dependency-free SVG line chart for the figures.
//
// Convention everywhere: a pair is predicted "same person" when its distance is <= the threshold.
// Distances may be any finite numbers (code distances are small integers, PCA distances floats).
import { DclError } from './errors.js';
import { linear, linearBackwardWeight } from './ops.js';
import { Rng } from './random.js';
import { Tensor } from './tensor.js';
import { describe, fail, knownKeys, nonNegativeInteger, plainObject, positiveInteger } from './validate.js';

// ---------------------------------------------------------------------------------------------
// Argument checks

/** Distances as given (number[] or any numeric typed array), every value finite. */
function distanceArray(value: unknown, name: string): ArrayLike<number> {
  const ok =
    Array.isArray(value) || (ArrayBuffer.isView(value) && !(value instanceof DataView) && !(value instanceof BigInt64Array) && !(value instanceof BigUint64Array));
  if (!ok) fail('E_ARG', 'an array or typed array of distances', name, value);
  const d = value as ArrayLike<unknown>;
  for (let i = 0; i < d.length; i++) {
    const v = d[i];
    if (typeof v !== 'number' || !Number.isFinite(v)) fail('E_ARG', 'finite distances', `${name}[${i}]`, v);
  }
  return d as ArrayLike<number>;
}

/** Same-person labels as 0/1 (booleans, 0/1 numbers, or a Uint8Array / Int32Array of 0/1). */
function sameArray(value: unknown, name: string, length: number, distancesName: string): Uint8Array {
  return binaryArray(value, name, { length, per: `label per distance of ${distancesName}`, what: 'same-person label' });
}

/**
 * 0/1 flags given as booleans or 0/1 numbers (any array or typed array), `length` of them when
 * given; `what` names one flag and `per` what a shape error says there is one of per item.
 */
function binaryArray(value: unknown, name: string, o: { length?: number; per?: string; what: string }): Uint8Array {
  const ok = Array.isArray(value) || (ArrayBuffer.isView(value) && !(value instanceof DataView));
  if (!ok) fail('E_ARG', `an array of ${o.what}s (booleans or 0/1)`, name, value);
  const s = value as ArrayLike<unknown>;
  const length = o.length ?? s.length;
  if (s.length !== length)
    throw new DclError('E_SHAPE', `Expected ${name} to have one ${o.per} (${length}) but received ${describe(value)}`);
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) {
    const v = s[i];
    if (v === true || v === 1) out[i] = 1;
    else if (v !== false && v !== 0) fail('E_ARG', `a ${o.what} (true/false or 1/0)`, `${name}[${i}]`, v);
  }
  return out;
}

function pairsInput(distances: unknown, same: unknown, dName = 'distances', sName = 'same'): { d: ArrayLike<number>; s: Uint8Array } {
  const d = distanceArray(distances, dName);
  if (d.length === 0) fail('E_ARG', 'at least one pair', dName, distances);
  return { d, s: sameArray(same, sName, d.length, dName) };
}

// ---------------------------------------------------------------------------------------------
// Verification accuracy and thresholds

/** Fraction of pairs classified correctly when "same" means distance <= threshold. */
export function verificationAccuracy(distances: ArrayLike<number>, same: ArrayLike<boolean | number>, threshold: number): number {
  const { d, s } = pairsInput(distances, same);
  if (typeof threshold !== 'number' || Number.isNaN(threshold)) fail('E_ARG', 'a threshold number', 'threshold', threshold);
  return countCorrect(d, s, threshold) / d.length;
}

function countCorrect(d: ArrayLike<number>, s: Uint8Array, threshold: number): number {
  let correct = 0;
  for (let i = 0; i < d.length; i++) if ((d[i] <= threshold) === (s[i] === 1)) correct++;
  return correct;
}

/** Distinct distances ascending, with how many same / different pairs sit at each. */
interface Groups {
  values: Float64Array;
  same: Int32Array;
  different: Int32Array;
  totalSame: number;
  totalDifferent: number;
}

function groupDistances(d: ArrayLike<number>, s: Uint8Array): Groups {
  const order = Array.from({ length: d.length }, (_, i) => i).sort((a, b) => d[a] - d[b]);
  const values: number[] = [];
  const sameCounts: number[] = [];
  const diffCounts: number[] = [];
  let totalSame = 0;
  for (const i of order) {
    const v = d[i];
    if (values.length === 0 || values[values.length - 1] !== v) {
      values.push(v);
      sameCounts.push(0);
      diffCounts.push(0);
    }
    if (s[i] === 1) {
      sameCounts[sameCounts.length - 1]++;
      totalSame++;
    } else diffCounts[diffCounts.length - 1]++;
  }
  return {
    values: Float64Array.from(values),
    same: Int32Array.from(sameCounts),
    different: Int32Array.from(diffCounts),
    totalSame,
    totalDifferent: d.length - totalSame,
  };
}

/** A threshold strictly between a < b (their midpoint unless rounding lands it on b). */
function between(a: number, b: number): number {
  let m = a + (b - a) / 2;
  if (!Number.isFinite(m)) m = a / 2 + b / 2;
  return m < b && m >= a ? m : a;
}

/**
 * The threshold that represents "after the first j distinct distances": j = 0 is below all of
 * them, j = m above all; inner ones are midpoints. The outer ones sit half the neighbouring gap
 * beyond the extreme distance (half a unit when all distances are equal), so integer distances
 * always get half-integer thresholds.
 */
function thresholdAfter(values: Float64Array, j: number): number {
  const m = values.length;
  if (j > 0 && j < m) return between(values[j - 1], values[j]);
  const gap = m > 1 ? (j === 0 ? values[1] - values[0] : values[m - 1] - values[m - 2]) : 1;
  return j === 0 ? values[0] - gap / 2 : values[m - 1] + gap / 2;
}

export interface ThresholdResult {
  /** Pairs with distance <= threshold are "same". */
  readonly threshold: number;
  /** Accuracy on the given pairs at that threshold. */
  readonly accuracy: number;
  /** Number of pairs classified correctly. */
  readonly correct: number;
}

/**
 * The threshold that maximises accuracy on these pairs. Accuracy only changes when the threshold
 * crosses a distance, so every distinct choice is tried exactly (integer counts, no float
 * comparison of accuracies): below all distances, between each two adjacent distinct distances,
 * above all. Ties go to the smallest threshold (the strictest "same" rule among the best), and the
 * returned value is the midpoint between the two adjacent distinct distances around it (see
 * thresholdAfter for the two ends). O(n log n).
 */
export function bestThreshold(distances: ArrayLike<number>, same: ArrayLike<boolean | number>): ThresholdResult {
  const { d, s } = pairsInput(distances, same);
  return bestOf(groupDistances(d, s), d.length);
}

function bestOf(g: Groups, total: number): ThresholdResult {
  let correct = g.totalDifferent; // threshold below everything: every pair called different
  let best = correct;
  let bestJ = 0;
  for (let j = 0; j < g.values.length; j++) {
    correct += g.same[j] - g.different[j];
    if (correct > best) {
      best = correct;
      bestJ = j + 1;
    }
  }
  return { threshold: thresholdAfter(g.values, bestJ), accuracy: best / total, correct: best };
}

export interface FoldResult {
  /** Threshold chosen on the other folds. */
  readonly threshold: number;
  /** Accuracy at that threshold on the other folds' pairs. */
  readonly trainAccuracy: number;
  /** Accuracy on this fold's pairs. */
  readonly accuracy: number;
}

export interface TenFoldResult {
  readonly folds: readonly FoldResult[];
  /** Mean of the per-fold accuracies. */
  readonly mean: number;
  /** Sample standard deviation of the per-fold accuracies (divisor F - 1, as LFW's README defines sigma). */
  readonly std: number;
  /** Population standard deviation (divisor F), for comparison with papers that use it. */
  readonly populationStd: number;
  /** Standard error of the mean, std / sqrt(F): the "+-" LFW's results page reports. */
  readonly standardError: number;
}

/**
 * LFW's View 2 protocol with one distance per pair: for each fold k, the threshold is chosen by
 * bestThreshold on the pairs of all other folds together and accuracy is measured on fold k. The
 * mean, the sample standard deviation (F - 1) and the standard error of the mean std / sqrt(F) are
 * returned (LFW's README: mu = sum p_i / 10, sigma = sqrt(sum (p_i - mu)^2 / 9), S_E = sigma /
 * sqrt(10)). Any number of folds >= 2 works. When each fold has its own model (the unrestricted
 * protocol trains one per fold), call bestThreshold and verificationAccuracy per fold instead.
 */
export function tenFoldAccuracy(
  foldDistances: readonly ArrayLike<number>[],
  foldSame: readonly ArrayLike<boolean | number>[],
): TenFoldResult {
  if (!Array.isArray(foldDistances) || foldDistances.length < 2) fail('E_ARG', 'an array of at least 2 folds of distances', 'foldDistances', foldDistances);
  if (!Array.isArray(foldSame) || foldSame.length !== foldDistances.length)
    throw new DclError('E_SHAPE', `Expected foldSame to have one entry per fold of foldDistances (${foldDistances.length}) but received ${describe(foldSame)}`);
  const folds = foldDistances.map((d, k) => pairsInput(d, foldSame[k], `foldDistances[${k}]`, `foldSame[${k}]`));
  const results: FoldResult[] = folds.map((held, k) => {
    let total = 0;
    for (let f = 0; f < folds.length; f++) if (f !== k) total += folds[f].d.length;
    const d = new Float64Array(total);
    const s = new Uint8Array(total);
    let at = 0;
    for (let f = 0; f < folds.length; f++) {
      if (f === k) continue;
      for (let i = 0; i < folds[f].d.length; i++, at++) {
        d[at] = folds[f].d[i];
        s[at] = folds[f].s[i];
      }
    }
    const chosen = bestOf(groupDistances(d, s), total);
    return { threshold: chosen.threshold, trainAccuracy: chosen.accuracy, accuracy: countCorrect(held.d, held.s, chosen.threshold) / held.d.length };
  });
  const n = results.length;
  const mean = results.reduce((a, r) => a + r.accuracy, 0) / n;
  const squares = results.reduce((a, r) => a + (r.accuracy - mean) ** 2, 0);
  const std = Math.sqrt(squares / (n - 1));
  return { folds: results, mean, std, populationStd: Math.sqrt(squares / n), standardError: std / Math.sqrt(n) };
}

/**
 * LFW-style accuracy for one list of pairs with no separate threshold set: the same-person pairs
 * and the different-person pairs are each dealt round-robin into `folds` folds (so every fold holds
 * both kinds), and tenFoldAccuracy judges each fold with the threshold that is best on the others.
 * With fewer pairs of a kind than folds, the number of folds drops to that count (at least 2).
 */
export function foldedAccuracy(distances: ArrayLike<number>, same: ArrayLike<boolean | number>, folds = 10): TenFoldResult {
  return dealtFolds(distances, same, folds).result;
}

/**
 * Per pair, whether foldedAccuracy's verdict on it is right (1) or wrong (0): the pair's fold is
 * judged with the threshold that is best on the other folds. For paired comparisons of two models
 * on the same pairs (pairedComparison).
 */
export function foldedCorrect(distances: ArrayLike<number>, same: ArrayLike<boolean | number>, folds = 10): Uint8Array {
  const { d, s, foldOf, result } = dealtFolds(distances, same, folds);
  const correct = new Uint8Array(d.length);
  for (let i = 0; i < d.length; i++) correct[i] = (d[i] <= result.folds[foldOf[i]].threshold) === (s[i] === 1) ? 1 : 0;
  return correct;
}

/** foldedAccuracy's dealing: each pair's fold, and the ten-fold result over those folds. */
function dealtFolds(distances: ArrayLike<number>, same: ArrayLike<boolean | number>, folds: number) {
  const { d, s } = pairsInput(distances, same);
  positiveInteger(folds, 'folds');
  let sameCount = 0;
  for (let i = 0; i < s.length; i++) sameCount += s[i];
  const f = Math.min(folds, sameCount, s.length - sameCount);
  if (f < 2)
    throw new DclError('E_ARG', `Expected at least 2 same-person and 2 different-person pairs for distances but received ${sameCount} and ${s.length - sameCount}`);
  const dd: number[][] = Array.from({ length: f }, () => []);
  const ss: number[][] = Array.from({ length: f }, () => []);
  const foldOf = new Int32Array(d.length);
  const dealt = [0, 0];
  for (let i = 0; i < d.length; i++) {
    const k = (foldOf[i] = dealt[s[i]]++ % f);
    dd[k].push(d[i]);
    ss[k].push(s[i]);
  }
  return { d, s, foldOf, result: tenFoldAccuracy(dd.map((x) => Float64Array.from(x)), ss.map((x) => Uint8Array.from(x))) };
}

/** Per pair, whether the verdict at `threshold` (same when distance <= threshold) is right (1) or wrong (0). */
export function verificationCorrect(distances: ArrayLike<number>, same: ArrayLike<boolean | number>, threshold: number): Uint8Array {
  const { d, s } = pairsInput(distances, same);
  if (typeof threshold !== 'number' || Number.isNaN(threshold)) fail('E_ARG', 'a threshold number', 'threshold', threshold);
  return Uint8Array.from(d as ArrayLike<number>, (v, i) => ((v <= threshold) === (s[i] === 1) ? 1 : 0));
}

// ---------------------------------------------------------------------------------------------
// Paired comparison of two classifiers on the same items

/** A p-value for reports: two significant digits, '<0.001' below that. */
export function pValueText(p: number): string {
  return p < 0.001 ? '<0.001' : p.toPrecision(2);
}

export interface PairedComparison {
  /** Items judged. */
  count: number;
  /** Accuracy of a and of b. */
  accuracyA: number;
  accuracyB: number;
  /** accuracyA - accuracyB. */
  difference: number;
  /** Items a gets right and b wrong, and the reverse (the discordant items). */
  onlyA: number;
  onlyB: number;
  /** Two-sided p-value of the exact McNemar test (mcNemarPValue(onlyA, onlyB)). */
  pValue: number;
}

/**
 * Whether two classifiers differ on the same items, from each one's right (1 / true) and wrong
 * (0 / false) per item: accuracies, the discordant counts and the exact McNemar test. Comparing two
 * accuracies as if their test sets were independent ignores that they share their items; the
 * discordant items are where the evidence is.
 */
export function pairedComparison(correctA: ArrayLike<boolean | number>, correctB: ArrayLike<boolean | number>): PairedComparison {
  const what = 'right / wrong flag';
  const a = binaryArray(correctA, 'correctA', { what });
  if (a.length === 0) fail('E_ARG', 'at least one item', 'correctA', correctA);
  const b = binaryArray(correctB, 'correctB', { length: a.length, per: 'flag per item of correctA', what });
  let rightA = 0, rightB = 0, onlyA = 0, onlyB = 0;
  for (let i = 0; i < a.length; i++) {
    rightA += a[i];
    rightB += b[i];
    if (a[i] > b[i]) onlyA++;
    else if (b[i] > a[i]) onlyB++;
  }
  const count = a.length;
  return { count, accuracyA: rightA / count, accuracyB: rightB / count, difference: (rightA - rightB) / count, onlyA, onlyB, pValue: mcNemarPValue(onlyA, onlyB) };
}

/**
 * Two-sided p-value of the exact McNemar test: under "no difference" each of the onlyA + onlyB
 * discordant items goes either way with probability 1/2, so p = min(1, 2 P(X <= min)) with X
 * binomial(onlyA + onlyB, 1/2). Summed in log space, so any counts work. 1 when there is no
 * discordant item.
 */
export function mcNemarPValue(onlyA: number, onlyB: number): number {
  nonNegativeInteger(onlyA, 'onlyA');
  nonNegativeInteger(onlyB, 'onlyB');
  const n = onlyA + onlyB;
  const k = Math.min(onlyA, onlyB);
  // log C(n, i) - n log 2, from i = 0 upwards; the tail sum by log-sum-exp.
  let term = -n * Math.LN2;
  const logs = [term];
  for (let i = 0; i < k; i++) {
    term += Math.log(n - i) - Math.log(i + 1);
    logs.push(term);
  }
  const top = logs[logs.length - 1];
  const tail = Math.exp(top) * logs.reduce((acc, l) => acc + Math.exp(l - top), 0);
  return Math.min(1, 2 * tail);
}

export interface RocCurve {
  /** False accept rate (different pairs with distance <= threshold / all different pairs), ascending from 0 to 1. */
  readonly far: Float64Array;
  /** True accept rate (same pairs accepted / all same pairs), ascending from 0 to 1. */
  readonly tar: Float64Array;
  /** The threshold of each point: below every distance for the first, then each distinct distance. */
  readonly thresholds: Float64Array;
  /** Area under the curve (trapezoids; equals P(d_same < d_different) + P(tie) / 2). */
  readonly auc: number;
}

function needBothKinds(g: Groups, name: string): void {
  if (g.totalSame === 0 || g.totalDifferent === 0)
    throw new DclError(
      'E_ARG',
      `Expected both same-person and different-person pairs for ${name} but received ${g.totalSame} same and ${g.totalDifferent} different`,
    );
}

/**
 * The ROC curve over every threshold: one point before the smallest distance (0, 0) and one after
 * each distinct distance, ending at (1, 1). Needs both kinds of pairs.
 */
export function rocCurve(distances: ArrayLike<number>, same: ArrayLike<boolean | number>): RocCurve {
  const { d, s } = pairsInput(distances, same);
  const g = groupDistances(d, s);
  needBothKinds(g, 'same');
  const m = g.values.length;
  const far = new Float64Array(m + 1);
  const tar = new Float64Array(m + 1);
  const thresholds = new Float64Array(m + 1);
  thresholds[0] = thresholdAfter(g.values, 0);
  let accepted = 0;
  let falseAccepted = 0;
  // Twice the area in units of 1 / (same x different) pairs: integer sums, one division at the end.
  let area2 = 0;
  for (let j = 0; j < m; j++) {
    area2 += g.different[j] * (2 * accepted + g.same[j]);
    accepted += g.same[j];
    falseAccepted += g.different[j];
    far[j + 1] = falseAccepted / g.totalDifferent;
    tar[j + 1] = accepted / g.totalSame;
    thresholds[j + 1] = g.values[j];
  }
  return { far, tar, thresholds, auc: area2 / (2 * g.totalSame * g.totalDifferent) };
}

/**
 * The equal error rate: where the false accept rate equals the false reject rate (1 - TAR), on the
 * ROC curve with straight lines between its points; `threshold` is interpolated the same way.
 */
export function equalErrorRate(distances: ArrayLike<number>, same: ArrayLike<boolean | number>): { eer: number; threshold: number } {
  const roc = rocCurve(distances, same);
  // f = FAR - FRR rises from -1 at (0, 0) to +1 at (1, 1) and never falls along the curve.
  const f = (i: number) => roc.far[i] - (1 - roc.tar[i]);
  let i = 0;
  while (f(i + 1) < 0) i++;
  const f0 = f(i);
  const f1 = f(i + 1);
  const t = f1 === f0 ? 0 : -f0 / (f1 - f0);
  return {
    eer: roc.far[i] + t * (roc.far[i + 1] - roc.far[i]),
    threshold: roc.thresholds[i] + t * (roc.thresholds[i + 1] - roc.thresholds[i]),
  };
}

// ---------------------------------------------------------------------------------------------
// PCA baseline

export type PcaMethod = 'covariance' | 'gram' | 'randomized';

export interface PcaModel {
  readonly dims: number;
  readonly k: number;
  /** Mean of the data, float64. */
  readonly mean: Float64Array;
  /** k unit-length, mutually orthogonal principal directions, row-major [k, dims], largest variance first. */
  readonly components: Float64Array;
  /** Variance along each component (sample variance, divisor count - 1). */
  readonly variances: Float64Array;
  /** Total variance of the data (trace of the sample covariance), for explained-variance ratios. */
  readonly totalVariance: number;
  readonly method: PcaMethod;
}

export interface PcaOptions {
  /**
   * 'covariance': the dims x dims covariance and Jacobi's method (exact; dims <= 1024).
   * 'gram': the count x count Gram matrix of the centred data and Jacobi (exact; count <= 1024).
   * 'randomized': randomized subspace iteration (approximate; large data).
   * Default: 'covariance' when dims <= 256 and dims <= count, 'gram' when count <= 256, else 'randomized'.
   */
  method?: PcaMethod;
  /** Subspace iterations of the randomized method (default 4). */
  iterations?: number;
  /** Extra directions the randomized method carries beyond k (default 10). */
  oversampling?: number;
  /** Seed of the randomized method's starting subspace (default 1). */
  seed?: number;
}

/** Largest matrix Jacobi's method is asked to diagonalise: O(n^3) per sweep in JavaScript. */
const MAX_EXACT = 1024;
/** Below this the default picks an exact method (a 256 x 256 Jacobi takes well under a second). */
const AUTO_EXACT = 256;
/** Rows centred and multiplied at a time by the randomized method and the projection. */
const BLOCK_ROWS = 512;

/**
 * Eigen-decomposition of a symmetric n x n matrix (row-major, float64; overwritten) by the cyclic
 * Jacobi method: exact to rounding, robust for repeated and zero eigenvalues, and simple, which
 * matters more here than speed for n of a few hundred. Returns eigenvalues descending and the
 * eigenvectors as the rows of `vectors`.
 */
export function symmetricEigen(matrix: Float64Array, n: number): { values: Float64Array; vectors: Float64Array } {
  const a = matrix;
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  let scale = 0;
  for (let i = 0; i < n * n; i++) scale += a[i] * a[i];
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p * n + q] * a[p * n + q];
    if (off <= 1e-30 * scale || off === 0) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q];
        if (apq === 0) continue;
        // Rotation angle that zeroes a[p][q]; t = tan(angle) is the smaller root of
        // t^2 + 2 theta t - 1 = 0, which keeps the rotation below 45 degrees (stable).
        const theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
        const t = (theta >= 0 ? 1 : -1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          if (k === p || k === q) continue;
          const akp = a[k * n + p];
          const akq = a[k * n + q];
          const np = c * akp - s * akq;
          const nq = s * akp + c * akq;
          a[k * n + p] = np;
          a[p * n + k] = np;
          a[k * n + q] = nq;
          a[q * n + k] = nq;
        }
        a[p * n + p] -= t * apq;
        a[q * n + q] += t * apq;
        a[p * n + q] = 0;
        a[q * n + p] = 0;
        for (let k = 0; k < n; k++) {
          const vp = v[k * n + p];
          const vq = v[k * n + q];
          v[k * n + p] = c * vp - s * vq;
          v[k * n + q] = s * vp + c * vq;
        }
      }
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => a[y * n + y] - a[x * n + x] || x - y);
  const values = new Float64Array(n);
  const vectors = new Float64Array(n * n);
  order.forEach((col, r) => {
    values[r] = a[col * n + col];
    for (let k = 0; k < n; k++) vectors[r * n + k] = v[k * n + col];
  });
  return { values, vectors };
}

/** A direction's sign is arbitrary: make its largest-magnitude entry (first on ties) positive, so results are reproducible. */
function fixSign(rows: Float64Array, count: number, dims: number): void {
  for (let r = 0; r < count; r++) {
    let at = 0;
    for (let j = 1; j < dims; j++) if (Math.abs(rows[r * dims + j]) > Math.abs(rows[r * dims + at])) at = j;
    if (rows[r * dims + at] < 0) for (let j = 0; j < dims; j++) rows[r * dims + j] = -rows[r * dims + j];
  }
}

/**
 * Orthonormalises rows [from, count) against all earlier rows by modified Gram-Schmidt applied
 * twice ("twice is enough" for float64). A row that vanishes (linearly dependent) is replaced by
 * a fresh vector from `refill` and done again.
 */
function orthonormalizeRows(rows: Float64Array, count: number, dims: number, from: number, refill: (row: Float64Array) => void): void {
  for (let r = from; r < count; r++) {
    const row = rows.subarray(r * dims, (r + 1) * dims);
    for (let attempt = 0; ; attempt++) {
      let before = 0;
      for (let j = 0; j < dims; j++) before += row[j] * row[j];
      for (let pass = 0; pass < 2; pass++) {
        for (let o = 0; o < r; o++) {
          const other = rows.subarray(o * dims, (o + 1) * dims);
          let dot = 0;
          for (let j = 0; j < dims; j++) dot += row[j] * other[j];
          for (let j = 0; j < dims; j++) row[j] -= dot * other[j];
        }
      }
      let after = 0;
      for (let j = 0; j < dims; j++) after += row[j] * row[j];
      if (after > 1e-20 * before && after > 0) {
        const inv = 1 / Math.sqrt(after);
        for (let j = 0; j < dims; j++) row[j] *= inv;
        break;
      }
      if (attempt > 8) throw new DclError('E_NATIVE', `PCA could not complete an orthonormal basis of ${dims} dimensions`);
      refill(row);
    }
  }
}

function checkData(data: unknown, count: number, dims: number, name = 'data'): Float32Array {
  if (!(data instanceof Float32Array)) fail('E_ARG', 'a Float32Array of count x dims values', name, data);
  if (data.length !== count * dims)
    throw new DclError('E_SHAPE', `Expected a Float32Array of length ${count * dims} (count ${count} x dims ${dims}) for ${name} but received ${describe(data)}`);
  for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i])) fail('E_ARG', 'finite values', `${name}[${i}]`, data[i]);
  return data;
}

/**
 * Principal component analysis of `count` rows of `dims` values (row-major), keeping k components.
 * The mean, covariance / Gram matrix, eigen problems and bases are float64. Methods (PcaOptions):
 * exact ones build a covariance (count dims^2 / 2 multiply-adds) or Gram matrix (count^2 dims / 2)
 * and diagonalise it by Jacobi; the randomized one (Halko, Martinsson & Tropp 2011, subspace
 * iteration with Rayleigh-Ritz) streams the data in blocks of centred rows through the native
 * float32 matrix kernels (linear / linearBackwardWeight), summing the block products in float64:
 * for 10k images of 64 x 64 and k = 32, 4 iterations take a few seconds on 2 cores (4,000 images:
 * 1.4 s), where float64 JavaScript products alone would take ~20 s. The variances of the last
 * few of 32 components are then within about 1% of converged ones; raise `iterations` for more.
 * Component signs follow fixSign (largest entry > 0).
 */
export function fitPca(data: Float32Array, count: number, dims: number, k: number, options?: PcaOptions): PcaModel {
  positiveInteger(count, 'count');
  positiveInteger(dims, 'dims');
  positiveInteger(k, 'k');
  if (count < 2) fail('E_ARG', 'at least 2 rows (a variance needs two)', 'count', count);
  if (k > dims || k > count) fail('E_ARG', `at most min(count, dims) = ${Math.min(count, dims)} components`, 'k', k);
  checkData(data, count, dims);
  const o = plainObject(options, 'options');
  knownKeys(o, ['method', 'iterations', 'oversampling', 'seed'], 'options');
  let method: PcaMethod;
  if (o.method === undefined) method = dims <= AUTO_EXACT && dims <= count ? 'covariance' : count <= AUTO_EXACT ? 'gram' : 'randomized';
  else if (o.method === 'covariance' || o.method === 'gram' || o.method === 'randomized') method = o.method;
  else fail('E_ARG', "'covariance', 'gram' or 'randomized'", 'options.method', o.method);
  if (method === 'covariance' && dims > MAX_EXACT) fail('E_ARG', `dims <= ${MAX_EXACT} for the covariance method`, 'dims', dims);
  if (method === 'gram' && count > MAX_EXACT) fail('E_ARG', `count <= ${MAX_EXACT} for the Gram method`, 'count', count);
  const iterations = o.iterations === undefined ? 4 : positiveInteger(o.iterations, 'options.iterations', 100);
  const oversampling = o.oversampling === undefined ? 10 : nonNegativeInteger(o.oversampling, 'options.oversampling', 1000);
  const seed = o.seed === undefined ? 1 : o.seed;
  if (typeof seed !== 'number' || !Number.isSafeInteger(seed) || seed < 0) fail('E_ARG', 'a non-negative integer seed', 'options.seed', seed);

  const mean = new Float64Array(dims);
  for (let r = 0; r < count; r++) for (let j = 0; j < dims; j++) mean[j] += data[r * dims + j];
  for (let j = 0; j < dims; j++) mean[j] /= count;
  let total = 0;
  for (let r = 0; r < count; r++)
    for (let j = 0; j < dims; j++) {
      const x = data[r * dims + j] - mean[j];
      total += x * x;
    }
  const totalVariance = total / (count - 1);

  const rng = new Rng(seed);
  const randomRow = (row: Float64Array) => {
    for (let j = 0; j < row.length; j++) row[j] = rng.normal();
  };
  let components: Float64Array;
  let variances: Float64Array;
  if (method === 'covariance') ({ components, variances } = pcaCovariance(data, count, dims, k, mean));
  else if (method === 'gram') ({ components, variances } = pcaGram(data, count, dims, k, mean, randomRow));
  else ({ components, variances } = pcaRandomized(data, count, dims, k, mean, iterations, oversampling, randomRow));
  fixSign(components, k, dims);
  return { dims, k, mean, components, variances, totalVariance, method };
}

function pcaCovariance(data: Float32Array, count: number, dims: number, k: number, mean: Float64Array) {
  const cov = new Float64Array(dims * dims);
  const row = new Float64Array(dims);
  for (let r = 0; r < count; r++) {
    for (let j = 0; j < dims; j++) row[j] = data[r * dims + j] - mean[j];
    for (let i = 0; i < dims; i++) {
      const x = row[i];
      if (x === 0) continue;
      for (let j = i; j < dims; j++) cov[i * dims + j] += x * row[j];
    }
  }
  for (let i = 0; i < dims; i++)
    for (let j = i; j < dims; j++) {
      const c = cov[i * dims + j] / (count - 1);
      cov[i * dims + j] = c;
      cov[j * dims + i] = c;
    }
  const { values, vectors } = symmetricEigen(cov, dims);
  // Rounding can leave a zero eigenvalue slightly negative: a variance is never below 0.
  return { components: vectors.slice(0, k * dims), variances: values.slice(0, k).map((v) => Math.max(0, v)) };
}

function pcaGram(data: Float32Array, count: number, dims: number, k: number, mean: Float64Array, randomRow: (row: Float64Array) => void) {
  const centred = new Float64Array(count * dims);
  for (let r = 0; r < count; r++) for (let j = 0; j < dims; j++) centred[r * dims + j] = data[r * dims + j] - mean[j];
  const gram = new Float64Array(count * count);
  for (let a = 0; a < count; a++)
    for (let b = a; b < count; b++) {
      let s = 0;
      for (let j = 0; j < dims; j++) s += centred[a * dims + j] * centred[b * dims + j];
      gram[a * count + b] = s;
      gram[b * count + a] = s;
    }
  const { values, vectors } = symmetricEigen(gram, count);
  // A Gram eigenvector u with eigenvalue lambda gives the direction X^T u / sqrt(lambda). Directions
  // of (numerically) zero variance are not determined by the data; they are completed to an
  // orthonormal basis deterministically instead.
  const components = new Float64Array(k * dims);
  const floor = Math.max(values[0], 0) * 1e-12;
  let good = 0;
  while (good < k && values[good] > floor && values[good] > 0) good++;
  for (let c = 0; c < good; c++) {
    const inv = 1 / Math.sqrt(values[c]);
    for (let r = 0; r < count; r++) {
      const u = vectors[c * count + r] * inv;
      if (u === 0) continue;
      for (let j = 0; j < dims; j++) components[c * dims + j] += u * centred[r * dims + j];
    }
  }
  orthonormalizeRows(components, good, dims, 0, randomRow);
  for (let c = good; c < k; c++) {
    const row = components.subarray(c * dims, (c + 1) * dims);
    row.fill(0);
    row[(c - good) % dims] = 1;
  }
  orthonormalizeRows(components, k, dims, good, randomRow);
  const variances = new Float64Array(k);
  for (let c = 0; c < good; c++) variances[c] = values[c] / (count - 1);
  return { components, variances };
}

/** Calls fn(block, rows) with successive blocks of centred rows as a [rows, dims] float32 tensor. */
function forCentredBlocks(data: Float32Array, count: number, dims: number, mean: Float64Array, fn: (block: Tensor, first: number, rows: number) => void): void {
  const buffer = new Float32Array(Math.min(BLOCK_ROWS, count) * dims);
  for (let first = 0; first < count; first += BLOCK_ROWS) {
    const rows = Math.min(BLOCK_ROWS, count - first);
    const view = buffer.subarray(0, rows * dims);
    for (let r = 0; r < rows; r++) {
      const src = (first + r) * dims;
      for (let j = 0; j < dims; j++) view[r * dims + j] = data[src + j] - mean[j];
    }
    fn(new Tensor(view, [rows, dims]), first, rows);
  }
}

function pcaRandomized(
  data: Float32Array,
  count: number,
  dims: number,
  k: number,
  mean: Float64Array,
  iterations: number,
  oversampling: number,
  randomRow: (row: Float64Array) => void,
) {
  const l = Math.min(k + oversampling, count, dims);
  // basis: l orthonormal rows of length dims spanning the current subspace.
  const basis = new Float64Array(l * dims);
  for (let r = 0; r < l; r++) randomRow(basis.subarray(r * dims, (r + 1) * dims));
  orthonormalizeRows(basis, l, dims, 0, randomRow);
  const basis32 = new Float32Array(l * dims);
  const product = new Float64Array(l * dims);
  for (let it = 0; it < iterations; it++) {
    // basis <- orth(C basis): per block, Z = A_b basis^T, then (A_b^T Z)^T = Z^T A_b summed in float64.
    basis32.set(basis);
    product.fill(0);
    forCentredBlocks(data, count, dims, mean, (block) => {
      const z = linear(block, new Tensor(basis32, [l, dims]));
      const w = linearBackwardWeight(block, z, { bias: false }).weight.data;
      for (let i = 0; i < w.length; i++) product[i] += w[i];
    });
    basis.set(product);
    orthonormalizeRows(basis, l, dims, 0, randomRow);
  }
  // Rayleigh-Ritz: T = basis C basis^T (l x l) from the block projections, summed in float64.
  basis32.set(basis);
  const t = new Float64Array(l * l);
  forCentredBlocks(data, count, dims, mean, (block, _first, rows) => {
    const z = linear(block, new Tensor(basis32, [l, dims])).data;
    for (let r = 0; r < rows; r++)
      for (let a = 0; a < l; a++) {
        const za = z[r * l + a];
        for (let b = a; b < l; b++) t[a * l + b] += za * z[r * l + b];
      }
  });
  for (let a = 0; a < l; a++)
    for (let b = a; b < l; b++) {
      t[a * l + b] /= count - 1;
      t[b * l + a] = t[a * l + b];
    }
  const { values, vectors } = symmetricEigen(t, l);
  const components = new Float64Array(k * dims);
  for (let c = 0; c < k; c++)
    for (let a = 0; a < l; a++) {
      const coef = vectors[c * l + a];
      for (let j = 0; j < dims; j++) components[c * dims + j] += coef * basis[a * dims + j];
    }
  return { components, variances: values.slice(0, k).map((v) => Math.max(0, v)) };
}

function checkModel(model: unknown): PcaModel {
  const m = model as Partial<PcaModel> | null;
  if (
    m === null ||
    typeof m !== 'object' ||
    !(m.mean instanceof Float64Array) ||
    !(m.components instanceof Float64Array) ||
    typeof m.dims !== 'number' ||
    typeof m.k !== 'number' ||
    m.mean.length !== m.dims ||
    m.components.length !== m.k * m.dims
  )
    fail('E_ARG', 'a PCA model from fitPca', 'model', model);
  return m as PcaModel;
}

/**
 * Projects `count` rows onto the model's components: (x - mean) . component, as a Float32Array
 * [count, k]. Small inputs are computed in float64; large ones (over 2^26 multiply-adds) in
 * blocks through the native float32 matrix kernel.
 */
export function pcaProject(model: PcaModel, data: Float32Array, count: number): Float32Array {
  const m = checkModel(model);
  positiveInteger(count, 'count');
  checkData(data, count, m.dims);
  const out = new Float32Array(count * m.k);
  if (count * m.dims * m.k <= 2 ** 26) {
    const row = new Float64Array(m.dims);
    for (let r = 0; r < count; r++) {
      for (let j = 0; j < m.dims; j++) row[j] = data[r * m.dims + j] - m.mean[j];
      for (let c = 0; c < m.k; c++) {
        let s = 0;
        for (let j = 0; j < m.dims; j++) s += row[j] * m.components[c * m.dims + j];
        out[r * m.k + c] = s;
      }
    }
    return out;
  }
  const weights = new Tensor(Float32Array.from(m.components), [m.k, m.dims]);
  forCentredBlocks(data, count, m.dims, m.mean, (block, first) => {
    out.set(linear(block, weights).data, first * m.k);
  });
  return out;
}

export type FeatureMetric = 'euclidean' | 'cosine' | 'l1';

/**
 * Distances between feature rows a[p] and b[p] of `features` ([count, dims] row-major), one per
 * pair, in float64. 'euclidean' (the default, used for the PCA baseline: the paper's baseline
 * compares raw pixels reduced by PCA, and Euclidean distance is what PCA preserves), 'cosine'
 * (1 - cos; 1 when either row is all zeros) or 'l1' (sum of |differences|: the metric the codes
 * are trained for, for unquantized network outputs).
 */
export function pairDistances(
  features: Float32Array,
  dims: number,
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  options?: { metric?: FeatureMetric },
): Float64Array {
  positiveInteger(dims, 'dims');
  if (!(features instanceof Float32Array) || features.length % dims !== 0)
    fail('E_SHAPE', `a Float32Array whose length is a multiple of dims = ${dims}`, 'features', features);
  const o = plainObject(options, 'options');
  knownKeys(o, ['metric'], 'options');
  const metric = o.metric ?? 'euclidean';
  if (metric !== 'euclidean' && metric !== 'cosine' && metric !== 'l1') fail('E_ARG', "'euclidean', 'cosine' or 'l1'", 'options.metric', metric);
  const rows = features.length / dims;
  const index = (v: unknown, name: string): number => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= rows) fail('E_ARG', `a row index from 0 to ${rows - 1}`, name, v);
    return v;
  };
  if (!a || !b || typeof a.length !== 'number' || a.length !== b.length)
    throw new DclError('E_SHAPE', `Expected index arrays a and b of equal length but received ${describe(a)} and ${describe(b)}`);
  const out = new Float64Array(a.length);
  for (let p = 0; p < a.length; p++) {
    const x = index(a[p], `a[${p}]`) * dims;
    const y = index(b[p], `b[${p}]`) * dims;
    if (metric === 'euclidean') {
      let s = 0;
      for (let j = 0; j < dims; j++) {
        const d = features[x + j] - features[y + j];
        s += d * d;
      }
      out[p] = Math.sqrt(s);
    } else if (metric === 'l1') {
      let s = 0;
      for (let j = 0; j < dims; j++) s += Math.abs(features[x + j] - features[y + j]);
      out[p] = s;
    } else {
      let dot = 0;
      let nx = 0;
      let ny = 0;
      for (let j = 0; j < dims; j++) {
        dot += features[x + j] * features[y + j];
        nx += features[x + j] * features[x + j];
        ny += features[y + j] * features[y + j];
      }
      out[p] = nx === 0 || ny === 0 ? 1 : 1 - dot / Math.sqrt(nx * ny);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// SVG line chart

export interface ChartSeries {
  readonly name: string;
  readonly points: readonly (readonly [number, number])[];
}

export interface LineChartOptions {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly series: readonly ChartSeries[];
  /** Logarithmic x axis (every x must be > 0), e.g. bins visited in a search. */
  readonly xLog?: boolean;
  /** Fixed y range [min, max]; points outside are clipped. Default: the data's range widened to round ticks. */
  readonly yRange?: readonly [number, number];
  /** Fixed x range [min, max]. */
  readonly xRange?: readonly [number, number];
  /** Size in pixels (default 640 x 420). */
  readonly width?: number;
  readonly height?: number;
}

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/** Short tick labels: six significant digits, no float noise such as 0.30000000000000004. */
function tickLabel(v: number): string {
  if (v === 0) return '0';
  return String(Number(v.toPrecision(6)));
}

/** Linear ticks at 1, 2 or 5 times a power of ten, about `target` of them, covering [lo, hi]. */
function linearTicks(lo: number, hi: number, target = 6): { lo: number; hi: number; ticks: number[] } {
  const raw = (hi - lo) / target;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? 10 * power;
  const first = Math.floor(lo / step + 1e-9);
  const last = Math.ceil(hi / step - 1e-9);
  const ticks: number[] = [];
  for (let i = first; i <= last; i++) ticks.push(Number((i * step).toPrecision(12)));
  return { lo: first * step, hi: last * step, ticks };
}

/** Log ticks at powers of ten (and 2, 5 times them when the range spans less than two decades). */
function logTicks(lo: number, hi: number): { lo: number; hi: number; ticks: number[] } {
  const a = Math.floor(Math.log10(lo) + 1e-9);
  const b = Math.ceil(Math.log10(hi) - 1e-9);
  const ticks: number[] = [];
  for (let e = a; e <= b; e++) {
    ticks.push(Number((10 ** e).toPrecision(12)));
    if (b - a < 2 && e < b) ticks.push(Number((2 * 10 ** e).toPrecision(12)), Number((5 * 10 ** e).toPrecision(12)));
  }
  return { lo: 10 ** a, hi: 10 ** Math.max(b, a + 1), ticks };
}

function rangeOption(value: unknown, name: string, positive: boolean): [number, number] | undefined {
  if (value === undefined) return undefined;
  const ok = Array.isArray(value) && value.length === 2 && value.every((v) => typeof v === 'number' && Number.isFinite(v)) && value[0] < value[1];
  if (!ok || (positive && value[0] <= 0)) fail('E_ARG', `a range [min, max] of finite numbers with min < max${positive ? ' and min > 0' : ''}`, name, value);
  return [value[0], value[1]];
}

/**
 * A standalone SVG line chart (axes, ticks, grid, title, axis labels, legend), no dependencies:
 * for ROC curves, the paper's Figure 4 (accuracy against code layout) and recall curves.
 */
export function lineChartSvg(options: LineChartOptions): string {
  const o = plainObject(options, 'options');
  knownKeys(o, ['title', 'xLabel', 'yLabel', 'series', 'xLog', 'yRange', 'xRange', 'width', 'height'], 'options');
  for (const key of ['title', 'xLabel', 'yLabel'] as const) if (typeof o[key] !== 'string') fail('E_ARG', 'a string', `options.${key}`, o[key]);
  if (o.xLog !== undefined && typeof o.xLog !== 'boolean') fail('E_ARG', 'a boolean', 'options.xLog', o.xLog);
  const xLog = o.xLog === true;
  const width = o.width === undefined ? 640 : positiveInteger(o.width, 'options.width', 10000);
  const height = o.height === undefined ? 420 : positiveInteger(o.height, 'options.height', 10000);
  if (!Array.isArray(o.series) || o.series.length === 0) fail('E_ARG', 'a non-empty array of { name, points }', 'options.series', o.series);
  const series = o.series as ChartSeries[];
  let xMin = Infinity;
  let xMax = -Infinity;
  let yMin = Infinity;
  let yMax = -Infinity;
  series.forEach((s, i) => {
    const name = `options.series[${i}]`;
    if (s === null || typeof s !== 'object' || typeof s.name !== 'string' || !Array.isArray(s.points)) fail('E_ARG', 'a series { name, points }', name, s);
    s.points.forEach((p, j) => {
      if (!Array.isArray(p) || p.length !== 2 || !Number.isFinite(p[0]) || !Number.isFinite(p[1]) || typeof p[0] !== 'number' || typeof p[1] !== 'number')
        fail('E_ARG', 'a point [x, y] of finite numbers', `${name}.points[${j}]`, p);
      if (xLog && p[0] <= 0) fail('E_ARG', 'x > 0 on a logarithmic x axis', `${name}.points[${j}]`, p);
      xMin = Math.min(xMin, p[0]);
      xMax = Math.max(xMax, p[0]);
      yMin = Math.min(yMin, p[1]);
      yMax = Math.max(yMax, p[1]);
    });
  });
  const xFixed = rangeOption(o.xRange, 'options.xRange', xLog);
  const yFixed = rangeOption(o.yRange, 'options.yRange', false);
  if ((!xFixed || !yFixed) && xMin === Infinity) fail('E_ARG', 'at least one point (or both xRange and yRange)', 'options.series', o.series);
  if (xFixed) [xMin, xMax] = xFixed;
  if (yFixed) [yMin, yMax] = yFixed;
  // A single value still needs a non-empty axis.
  if (xMin === xMax) [xMin, xMax] = xLog ? [xMin / 10, xMax * 10] : [xMin - 1, xMax + 1];
  if (yMin === yMax) [yMin, yMax] = [yMin - 1, yMax + 1];
  const xAxis = xLog ? logTicks(xMin, xMax) : linearTicks(xMin, xMax);
  const yAxis = linearTicks(yMin, yMax);
  // Fixed ranges are kept exactly; ticks outside them are dropped.
  const xLo = xFixed ? xMin : xAxis.lo;
  const xHi = xFixed ? xMax : xAxis.hi;
  const yLo = yFixed ? yMin : yAxis.lo;
  const yHi = yFixed ? yMax : yAxis.hi;

  const legendWidth = Math.min(220, 40 + 7 * Math.max(...series.map((s) => s.name.length)));
  const left = 70;
  const right = legendWidth + 20;
  const top = 40;
  const bottom = 55;
  const plotW = Math.max(10, width - left - right);
  const plotH = Math.max(10, height - top - bottom);
  const fx = (x: number) => left + (xLog ? (Math.log10(x) - Math.log10(xLo)) / (Math.log10(xHi) - Math.log10(xLo)) : (x - xLo) / (xHi - xLo)) * plotW;
  const fy = (y: number) => top + (1 - (y - yLo) / (yHi - yLo)) * plotH;
  const n = (v: number) => String(Math.round(v * 100) / 100);

  const parts: string[] = [];
  parts.push(`<?xml version="1.0" encoding="UTF-8"?>`);
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`);
  parts.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="white"/>`);
  parts.push(`<defs><clipPath id="plot-area"><rect x="${left}" y="${top}" width="${plotW}" height="${plotH}"/></clipPath></defs>`);
  parts.push(`<text x="${n(left + plotW / 2)}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(o.title as string)}</text>`);
  const eps = 1e-9 * (Math.abs(xHi) + Math.abs(xLo) + 1);
  for (const t of xAxis.ticks) {
    if (t < xLo - eps || t > xHi + eps) continue;
    const x = n(fx(t));
    parts.push(`<line x1="${x}" y1="${top}" x2="${x}" y2="${top + plotH}" stroke="#e0e0e0"/>`);
    parts.push(`<line x1="${x}" y1="${top + plotH}" x2="${x}" y2="${top + plotH + 5}" stroke="black"/>`);
    parts.push(`<text x="${x}" y="${top + plotH + 18}" text-anchor="middle">${escapeXml(tickLabel(t))}</text>`);
  }
  const yEps = 1e-9 * (Math.abs(yHi) + Math.abs(yLo) + 1);
  for (const t of yAxis.ticks) {
    if (t < yLo - yEps || t > yHi + yEps) continue;
    const y = n(fy(t));
    parts.push(`<line x1="${left}" y1="${y}" x2="${left + plotW}" y2="${y}" stroke="#e0e0e0"/>`);
    parts.push(`<line x1="${left - 5}" y1="${y}" x2="${left}" y2="${y}" stroke="black"/>`);
    parts.push(`<text x="${left - 8}" y="${y}" text-anchor="end" dominant-baseline="middle">${escapeXml(tickLabel(t))}</text>`);
  }
  parts.push(`<rect x="${left}" y="${top}" width="${plotW}" height="${plotH}" fill="none" stroke="black"/>`);
  parts.push(`<text x="${n(left + plotW / 2)}" y="${height - 12}" text-anchor="middle">${escapeXml(o.xLabel as string)}</text>`);
  parts.push(
    `<text x="16" y="${n(top + plotH / 2)}" text-anchor="middle" transform="rotate(-90 16 ${n(top + plotH / 2)})">${escapeXml(o.yLabel as string)}</text>`,
  );
  series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length];
    const coords = s.points.map((p) => `${n(fx(p[0]))},${n(fy(p[1]))}`);
    parts.push(`<g clip-path="url(#plot-area)">`);
    if (coords.length > 1) parts.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${coords.join(' ')}"/>`);
    // Markers when there are few points, so single points and sparse curves stay visible.
    if (coords.length <= 40) for (const c of coords) {
      const [x, y] = c.split(',');
      parts.push(`<circle cx="${x}" cy="${y}" r="3" fill="${color}"/>`);
    }
    parts.push(`</g>`);
    const ly = top + 10 + i * 18;
    const lx = left + plotW + 15;
    parts.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 20}" y2="${ly}" stroke="${color}" stroke-width="2"/>`);
    parts.push(`<text x="${lx + 26}" y="${ly}" dominant-baseline="middle">${escapeXml(s.name)}</text>`);
  });
  parts.push(`</svg>`);
  return parts.join('\n') + '\n';
}
