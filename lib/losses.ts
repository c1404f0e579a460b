// The compactness losses of Deep Compactness Learning over a batch of image pairs, as plain
// validated functions over tensors (the autograd layer wraps them as differentiable ops).
//
// For a pair of images at distance d with label l (-1: same person, +1: different people):
//   L = log(1 + exp(-l (alpha d - beta))) = softplus(-l (alpha d - beta))      (paper, eq. 2-3)
// so a same-person pair is pushed to d < beta / alpha and a different-person pair to d > beta / alpha.
// The batch loss is the weighted mean sum_k w_k L_k / sum_k w_k (reduction 'mean', the default) or
// the weighted sum (reduction 'sum'); gradients are of that value times gradOutput (default 1).
//
// - hammingDpLoss (technique 2, binary codes): p [N, n] are the probabilities that each bit is 1;
//   L_k is the expected loss over the distribution of the Hamming distance, computed exactly by
//   dynamic programming (eq. 6-7) in float64, with its exact gradient with respect to p.
// - pairL1Loss (technique 1 and the unquantized reference): d = sum_i |values_a,i - values_b,i|;
//   the gradient with respect to values takes its direction from signs (sign(signs_a,i -
//   signs_b,i)), so that rounded values that tie still get a direction. With values = the
//   straight-through codes floor(2^Q p) (rounding error held constant) and signs = 2^Q p, the
//   gradient with respect to p is 2^Q gradValues.
// alpha and beta are plain numbers here; gradAlpha / gradBeta let a caller learn them.
import { DclError } from './errors.js';
import { native } from './native.js';
import { allocateFloats, asTensor, sameShape, Tensor } from './tensor.js';
import type { TensorLike } from './tensor.js';
import { fail, knownKeys, plainObject } from './validate.js';

/** Largest code length hammingDpLoss accepts (the DP table grows as n^2). */
export const MAX_DP_BITS = 64;

/** softplus(x) = log(1 + exp(x)) in float64, without overflow for large |x|. */
export function softplus(x: number): number {
  return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
}

/** d softplus(x) / dx = 1 / (1 + exp(-x)), in float64, without overflow. */
export function softplusDerivative(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

/** The loss of one pair at distance d: softplus(-label (alpha d - beta)), label -1 or +1. */
export function pairLossAt(distance: number, label: number, alpha: number, beta: number): number {
  return softplus(-label * (alpha * distance - beta));
}

/** The arguments shared by both losses. */
export interface PairBatchOptions {
  /** Image indices of each pair: a flat Int32Array [a0, b0, a1, b1, ...] or an array of [a, b]. */
  pairs: Int32Array | ReadonlyArray<readonly [number, number]>;
  /** One label per pair: -1 for the same person, +1 for different people. */
  labels: ArrayLike<number>;
  /** One weight >= 0 per pair (default 1 each). */
  weights?: ArrayLike<number>;
  alpha: number;
  beta: number;
  /** 'mean' (default): sum w L / sum w. 'sum': sum w L. */
  reduction?: 'mean' | 'sum';
  /** Multiplies every gradient (the gradient of the final objective with respect to `loss`). Default 1. */
  gradOutput?: number;
  /** false: forward only (gradients null / NaN, and faster). Default true. */
  gradients?: boolean;
}

export interface HammingDpLossOptions extends PairBatchOptions {
  /** [N, n] probabilities that each bit is 1, n <= 64. */
  p: TensorLike;
}

export interface PairL1LossOptions extends PairBatchOptions {
  /** [N, n] the values whose L1 distance is the pair distance (e.g. rounded codes). */
  values: TensorLike;
  /** [N, n] the values whose differences give the gradient's direction (default: values). */
  signs?: TensorLike;
}

export interface PairLossResult {
  /** The reduced loss (weighted mean or sum). */
  loss: number;
  /** Each pair's loss L_k (unweighted), float64. */
  perPair: Float64Array;
  /** d(gradOutput * loss)/d alpha and / d beta (NaN with gradients: false). */
  gradAlpha: number;
  gradBeta: number;
}

export interface HammingDpLossResult extends PairLossResult {
  /** d(gradOutput * loss)/dp, [N, n] (null with gradients: false). */
  gradP: Tensor | null;
}

export interface PairL1LossResult extends PairLossResult {
  /** d(gradOutput * loss)/dvalues, [N, n], directions from signs (null with gradients: false). */
  gradValues: Tensor | null;
}

const BATCH_KEYS = ['pairs', 'labels', 'weights', 'alpha', 'beta', 'reduction', 'gradOutput', 'gradients'] as const;

function finiteNumber(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) fail('E_ARG', 'a finite number', name, value);
  return value;
}

function pairsArray(value: unknown, images: number, name: string): Int32Array {
  let pairs: Int32Array;
  if (value instanceof Int32Array) {
    if (value.length === 0 || value.length % 2 !== 0)
      fail('E_SHAPE', 'an Int32Array [a0, b0, a1, b1, ...] of a non-zero, even length', name, value);
    pairs = value;
  } else if (Array.isArray(value)) {
    if (value.length === 0) fail('E_SHAPE', 'at least one pair', name, value);
    pairs = new Int32Array(2 * value.length);
    for (let k = 0; k < value.length; k++) {
      const pr: unknown = value[k];
      if (!Array.isArray(pr) || pr.length !== 2) fail('E_ARG', 'a pair [a, b] of image indices', `${name}[${k}]`, pr);
      for (let s = 0; s < 2; s++) {
        const v: unknown = pr[s];
        if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= images)
          fail('E_ARG', `an image index from 0 to ${images - 1}`, `${name}[${k}][${s}]`, v);
        pairs[2 * k + s] = v;
      }
    }
    return pairs;
  } else {
    fail('E_ARG', 'an Int32Array [a0, b0, a1, b1, ...] or an array of [a, b] pairs', name, value);
  }
  for (let i = 0; i < pairs.length; i++) {
    if (pairs[i] < 0 || pairs[i] >= images)
      throw new DclError(
        'E_ARG',
        `Expected image indices from 0 to ${images - 1} for ${name} but received ${pairs[i]} at index ${i} (pair ${i >> 1})`,
      );
  }
  return pairs;
}

function perPairFloats(value: unknown, count: number, name: string): Float32Array {
  if (value === null || typeof value !== 'object' || typeof (value as { length?: unknown }).length !== 'number')
    fail('E_ARG', `an array or typed array of ${count} numbers`, name, value);
  const a = value as ArrayLike<unknown>;
  if (a.length !== count) fail('E_SHAPE', `one value per pair (${count})`, name, value);
  if (value instanceof Float32Array) return value;
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    const v = a[i];
    if (typeof v !== 'number') fail('E_ARG', 'numbers', `${name}[${i}]`, v);
    out[i] = v;
  }
  return out;
}

/** A validated pair batch (pairs, labels, weights and the reduction) of a pair-loss call. */
export interface CheckedPairBatch {
  pairs: Int32Array;
  labels: Float32Array;
  weights: Float32Array | null;
  alpha: number;
  beta: number;
  count: number;
  weightSum: number;
  reduction: 'mean' | 'sum';
  gradOutput: number;
  gradients: boolean;
}

/** Checks the pair-batch options shared by the pair losses (here and on CUDA, lib/cuda.ts). */
export function checkPairBatch(o: Record<string, unknown>, images: number): CheckedPairBatch {
  const pairs = pairsArray(o.pairs, images, 'options.pairs');
  const count = pairs.length / 2;
  const labels = perPairFloats(o.labels, count, 'options.labels');
  for (let k = 0; k < count; k++)
    if (labels[k] !== 1 && labels[k] !== -1) fail('E_ARG', '-1 (same person) or +1 (different people)', `options.labels[${k}]`, labels[k]);
  let weights: Float32Array | null = null;
  let weightSum = count;
  if (o.weights !== undefined) {
    weights = perPairFloats(o.weights, count, 'options.weights');
    weightSum = 0;
    for (let k = 0; k < count; k++) {
      if (!(weights[k] >= 0 && Number.isFinite(weights[k]))) fail('E_ARG', 'finite weights >= 0', `options.weights[${k}]`, weights[k]);
      weightSum += weights[k];
    }
  }
  const reduction = o.reduction ?? 'mean';
  if (reduction !== 'mean' && reduction !== 'sum') fail('E_ARG', "'mean' or 'sum'", 'options.reduction', reduction);
  if (reduction === 'mean' && !(weightSum > 0))
    throw new DclError('E_ARG', 'Expected weights with a positive sum for options.weights (reduction mean) but received weights that sum to 0');
  const gradients = o.gradients ?? true;
  if (typeof gradients !== 'boolean') fail('E_ARG', 'a boolean', 'options.gradients', gradients);
  return {
    pairs,
    labels,
    weights,
    alpha: finiteNumber(o.alpha, 'options.alpha'),
    beta: finiteNumber(o.beta, 'options.beta'),
    count,
    weightSum,
    reduction,
    gradOutput: o.gradOutput === undefined ? 1 : finiteNumber(o.gradOutput, 'options.gradOutput'),
    gradients,
  };
}

function checkValues(t: Tensor, name: string, check: (v: number) => boolean, expected: string): void {
  const d = t.data;
  const n = t.shape[1];
  for (let i = 0; i < d.length; i++) {
    if (!check(d[i])) fail('E_ARG', `${expected} (at [${Math.floor(i / n)}, ${i % n}])`, name, d[i]);
  }
}

/** The weighted sum or mean of per-pair losses, by the batch's reduction. */
export function reducePairLosses(b: CheckedPairBatch, perPair: Float64Array): number {
  let s = 0;
  for (let k = 0; k < b.count; k++) s += (b.weights ? b.weights[k] : 1) * perPair[k];
  return b.reduction === 'mean' ? s / b.weightSum : s;
}

/** The factor d(reduced loss)/d(per-pair loss) before weights: gradOutput over the weight sum for a mean. */
export function pairGradScale(b: CheckedPairBatch): number {
  return b.reduction === 'mean' ? b.gradOutput / b.weightSum : b.gradOutput;
}

/**
 * Expected pair loss over binary codes (technique 2): bit i of image x is 1 with probability
 * p[x, i]; each pair's loss is the expectation of softplus(-l (alpha d - beta)) over the Hamming
 * distance d of the two random codes, computed exactly by dynamic programming, with its exact
 * gradient with respect to p, alpha and beta.
 */
export function hammingDpLoss(options: HammingDpLossOptions): HammingDpLossResult {
  if (options === undefined) fail('E_ARG', 'an options object with p, pairs, labels, alpha and beta', 'options', options);
  const o = plainObject(options, 'options');
  knownKeys(o, ['p', ...BATCH_KEYS], 'options');
  const p = asTensor(o.p, 'options.p', 2);
  const [images, n] = p.shape;
  if (n > MAX_DP_BITS)
    throw new DclError('E_SHAPE', `Expected at most ${MAX_DP_BITS} bits per code for options.p but received shape [${p.shape.join(', ')}]`);
  checkValues(p, 'options.p', (v) => v >= 0 && v <= 1, 'probabilities in [0, 1]');
  const b = checkPairBatch(o, images);
  const perPair = new Float64Array(b.count);
  const gradP = b.gradients ? new Tensor(allocateFloats(images * n), [images, n]) : null;
  const scalars = b.gradients ? new Float64Array(2) : null;
  native.hammingDp(p.data, gradP ? gradP.data : null, b.pairs, b.labels, b.weights, perPair, scalars, [images, n, b.count], b.alpha, b.beta, pairGradScale(b));
  return {
    loss: reducePairLosses(b, perPair),
    perPair,
    gradP,
    gradAlpha: scalars ? scalars[0] : Number.NaN,
    gradBeta: scalars ? scalars[1] : Number.NaN,
  };
}

/**
 * Pair loss over the L1 distance of `values` (technique 1 with values = the straight-through codes,
 * or the unquantized reference with values = the real outputs). The gradient with respect to values
 * takes its direction from `signs` (default values): see the file comment.
 */
export function pairL1Loss(options: PairL1LossOptions): PairL1LossResult {
  if (options === undefined) fail('E_ARG', 'an options object with values, pairs, labels, alpha and beta', 'options', options);
  const o = plainObject(options, 'options');
  knownKeys(o, ['values', 'signs', ...BATCH_KEYS], 'options');
  const values = asTensor(o.values, 'options.values', 2);
  const signs = o.signs === undefined ? values : asTensor(o.signs, 'options.signs', 2);
  if (!sameShape(signs.shape, values.shape))
    throw new DclError(
      'E_SHAPE',
      `Expected shape [${values.shape.join(', ')}] (that of options.values) for options.signs but received shape [${signs.shape.join(', ')}]`,
    );
  const [images, n] = values.shape;
  checkValues(values, 'options.values', Number.isFinite, 'finite values');
  if (signs !== values) checkValues(signs, 'options.signs', Number.isFinite, 'finite values');
  const b = checkPairBatch(o, images);
  const perPair = new Float64Array(b.count);
  const gradValues = b.gradients ? new Tensor(allocateFloats(images * n), [images, n]) : null;
  const scalars = b.gradients ? new Float64Array(2) : null;
  native.pairL1Loss(
    values.data,
    signs.data,
    gradValues ? gradValues.data : null,
    b.pairs,
    b.labels,
    b.weights,
    perPair,
    scalars,
    [images, n, b.count],
    b.alpha,
    b.beta,
    pairGradScale(b),
  );
  return {
    loss: reducePairLosses(b, perPair),
    perPair,
    gradValues,
    gradAlpha: scalars ? scalars[0] : Number.NaN,
    gradBeta: scalars ? scalars[1] : Number.NaN,
  };
}
