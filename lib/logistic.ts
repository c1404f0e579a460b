// Binary logistic regression with an L2 penalty, in float64, fitted by Newton's method (the
// problem is small: a face code unpacks into at most 32 features). A baseline for the look-up
// table classifier: what a linear model makes of the same codes.
//
// Features are standardised with the training mean and standard deviation (a constant feature is
// only centred). The objective is the mean log-loss plus (l2 / 2) |w|^2 over the weights of the
// standardised features (the bias is not penalised). Each Newton step solves H s = -g by Cholesky
// and is halved until the objective does not rise; fitting stops when the largest gradient entry
// is below `tolerance` or after `iterations` steps.
import { DclError } from './errors.js';
import { describe, fail, knownKeys, plainObject } from './validate.js';

export interface LogisticOptions {
  /** L2 penalty on the standardised weights (default 1e-3). */
  l2?: number;
  /** Newton steps at most (default 100). */
  iterations?: number;
  /** Stop when max |gradient| is below this (default 1e-9). */
  tolerance?: number;
}

export interface LogisticModel {
  dims: number;
  /** Weights of the standardised features. */
  weights: Float64Array;
  bias: number;
  /** Training mean and standard deviation per feature (std 1 for a constant feature). */
  mean: Float64Array;
  std: Float64Array;
  iterations: number;
  converged: boolean;
  /** The final objective (mean log-loss + penalty). */
  loss: number;
}

function features(x: unknown, name: string): ArrayLike<number> {
  if (!(x instanceof Float64Array || x instanceof Float32Array || x instanceof Uint8Array || x instanceof Uint32Array || x instanceof Int32Array || Array.isArray(x)))
    fail('E_ARG', 'a typed array of count x dims features', name, x);
  return x as ArrayLike<number>;
}

function checkShape(x: ArrayLike<number>, count: number, dims: number, name: string): void {
  if (x.length !== count * dims) throw new DclError('E_SHAPE', `Expected ${count} x ${dims} = ${count * dims} features for ${name} but received ${describe(x)}`);
}

/** Fits P(y = 1 | x) = sigmoid(w . standardise(x) + b) to labels 0 / 1. x: count x dims, row-major. */
export function fitLogisticRegression(x: ArrayLike<number>, count: number, dims: number, labels: ArrayLike<number>, options?: LogisticOptions): LogisticModel {
  const X = features(x, 'x');
  if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 1) fail('E_ARG', 'a positive integer', 'count', count);
  if (typeof dims !== 'number' || !Number.isSafeInteger(dims) || dims < 1 || dims > 4096) fail('E_ARG', 'an integer from 1 to 4096', 'dims', dims);
  checkShape(X, count, dims, 'x');
  if (labels === null || typeof labels !== 'object' || (labels as ArrayLike<number>).length !== count)
    throw new DclError('E_SHAPE', `Expected ${count} labels (0 or 1) for labels but received ${describe(labels)}`);
  const y = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    if (labels[i] !== 0 && labels[i] !== 1) fail('E_ARG', 'labels 0 or 1', `labels[${i}]`, labels[i]);
    y[i] = labels[i];
  }
  const o = plainObject(options, 'options');
  knownKeys(o, ['l2', 'iterations', 'tolerance'], 'options');
  const l2 = o.l2 === undefined ? 1e-3 : (o.l2 as number);
  if (typeof l2 !== 'number' || !Number.isFinite(l2) || l2 < 0) fail('E_ARG', 'a finite number >= 0', 'options.l2', o.l2);
  const maxIter = o.iterations === undefined ? 100 : (o.iterations as number);
  if (typeof maxIter !== 'number' || !Number.isSafeInteger(maxIter) || maxIter < 0) fail('E_ARG', 'a non-negative integer', 'options.iterations', o.iterations);
  const tolerance = o.tolerance === undefined ? 1e-9 : (o.tolerance as number);
  if (typeof tolerance !== 'number' || !(tolerance > 0)) fail('E_ARG', 'a number > 0', 'options.tolerance', o.tolerance);

  // Standardise.
  const mean = new Float64Array(dims);
  const std = new Float64Array(dims);
  for (let i = 0; i < count; i++) for (let j = 0; j < dims; j++) mean[j] += X[i * dims + j];
  for (let j = 0; j < dims; j++) mean[j] /= count;
  for (let i = 0; i < count; i++)
    for (let j = 0; j < dims; j++) {
      const v = X[i * dims + j] - mean[j];
      std[j] += v * v;
    }
  for (let j = 0; j < dims; j++) {
    std[j] = Math.sqrt(std[j] / count);
    if (!(std[j] > 1e-12)) std[j] = 1;
  }
  const D = dims + 1; // the bias last
  const Z = new Float64Array(count * D);
  for (let i = 0; i < count; i++) {
    for (let j = 0; j < dims; j++) Z[i * D + j] = (X[i * dims + j] - mean[j]) / std[j];
    Z[i * D + dims] = 1;
  }

  const beta = new Float64Array(D);
  const objective = (b: Float64Array): number => {
    let s = 0;
    for (let i = 0; i < count; i++) {
      let z = 0;
      for (let j = 0; j < D; j++) z += Z[i * D + j] * b[j];
      // log(1 + e^z) - y z, computed stably.
      s += (z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z))) - y[i] * z;
    }
    let pen = 0;
    for (let j = 0; j < dims; j++) pen += b[j] * b[j];
    return s / count + 0.5 * l2 * pen;
  };
  let loss = objective(beta);
  let iterations = 0;
  let converged = false;
  const g = new Float64Array(D);
  const H = new Float64Array(D * D);
  const step = new Float64Array(D);
  const trial = new Float64Array(D);
  for (;;) {
    g.fill(0);
    H.fill(0);
    for (let i = 0; i < count; i++) {
      let z = 0;
      const row = i * D;
      for (let j = 0; j < D; j++) z += Z[row + j] * beta[j];
      const p = 1 / (1 + Math.exp(-z));
      const r = p - y[i];
      const w = p * (1 - p);
      for (let j = 0; j < D; j++) {
        g[j] += r * Z[row + j];
        const wz = w * Z[row + j];
        for (let k = 0; k <= j; k++) H[j * D + k] += wz * Z[row + k];
      }
    }
    let gmax = 0;
    for (let j = 0; j < D; j++) {
      g[j] = g[j] / count + (j < dims ? l2 * beta[j] : 0);
      gmax = Math.max(gmax, Math.abs(g[j]));
      for (let k = 0; k <= j; k++) {
        H[j * D + k] = H[j * D + k] / count + (j === k ? (j < dims ? l2 : 0) + 1e-10 : 0);
        H[k * D + j] = H[j * D + k];
      }
    }
    if (gmax < tolerance) {
      converged = true;
      break;
    }
    if (iterations >= maxIter) break;
    for (let j = 0; j < D; j++) step[j] = -g[j];
    choleskySolve(H, D, step);
    let t = 1;
    let next = Infinity;
    for (let halvings = 0; halvings < 60; halvings++, t /= 2) {
      for (let j = 0; j < D; j++) trial[j] = beta[j] + t * step[j];
      next = objective(trial);
      if (next <= loss) break;
    }
    iterations++;
    if (!(next <= loss)) break; // no step decreases the objective: at the optimum in float64
    beta.set(trial);
    const change = loss - next;
    loss = next;
    if (change === 0) {
      converged = true;
      break;
    }
  }
  return { dims, weights: beta.slice(0, dims), bias: beta[dims], mean, std, iterations, converged, loss };
}

/** In place: solves A x = b for a symmetric positive definite A (n x n, row-major); b becomes x. */
function choleskySolve(A: Float64Array, n: number, b: Float64Array): void {
  const L = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = A[i * n + j];
      for (let k = 0; k < j; k++) s -= L[i * n + k] * L[j * n + k];
      if (i === j) L[i * n + i] = Math.sqrt(Math.max(s, 1e-300));
      else L[i * n + j] = s / L[j * n + j];
    }
  }
  for (let i = 0; i < n; i++) {
    let s = b[i];
    for (let k = 0; k < i; k++) s -= L[i * n + k] * b[k];
    b[i] = s / L[i * n + i];
  }
  for (let i = n - 1; i >= 0; i--) {
    let s = b[i];
    for (let k = i + 1; k < n; k++) s -= L[k * n + i] * b[k];
    b[i] = s / L[i * n + i];
  }
}

/** P(y = 1) for each of count rows of x (count x model.dims, row-major). */
export function logisticProbabilities(model: LogisticModel, x: ArrayLike<number>, count: number): Float64Array {
  const X = features(x, 'x');
  checkShape(X, count, model.dims, 'x');
  const d = model.dims;
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    let z = model.bias;
    for (let j = 0; j < d; j++) z += model.weights[j] * ((X[i * d + j] - model.mean[j]) / model.std[j]);
    out[i] = 1 / (1 + Math.exp(-z));
  }
  return out;
}

/** Labels 0 / 1 (1 where P(y = 1) > 0.5; a tie at exactly 0.5 goes to 0, the lower class). */
export function logisticPredict(model: LogisticModel, x: ArrayLike<number>, count: number): Int32Array {
  return Int32Array.from(logisticProbabilities(model, x, count), (p) => (p > 0.5 ? 1 : 0));
}
