// Loads the compiled addon and wraps each native entry point so that anything it throws
// becomes a DclError. The addon trusts its arguments: everything is validated before a call.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { DclError, fromNativeError } from './errors.js';

/** The shape of the compiled addon (bindings/addon.cpp). Shapes are integer arrays in a fixed order. */
export interface NativeAddon {
  capabilities(): NativeCapabilities;
  setIsa(isa: string): void;
  setThreads(threads: number): void;
  /** 'auto' | 'direct' | 'winograd': how the SIMD paths run 3x3, stride-1, padding-1 convolutions. */
  setConvAlgorithm(algorithm: string): void;
  convAlgorithm(): string;
  fmaPeak(isa: string, threads: number, seconds: number): number;
  /** conv shape: [N, Cin, H, W, Cout, KH, KW, SH, SW, PH, PW] */
  conv2dForward(x: Float32Array, w: Float32Array, b: Float32Array | null, y: Float32Array, shape: number[]): void;
  conv2dBackwardInput(dy: Float32Array, w: Float32Array, dx: Float32Array, shape: number[]): void;
  conv2dBackwardWeight(x: Float32Array, dy: Float32Array, dw: Float32Array, db: Float32Array | null, shape: number[]): void;
  /** pool shape: [N, C, H, W, KH, KW, SH, SW] */
  maxPool2dForward(x: Float32Array, y: Float32Array, argmax: Int32Array, shape: number[]): void;
  maxPool2dBackward(dy: Float32Array, argmax: Int32Array, dx: Float32Array, shape: number[]): void;
  absTanhForward(x: Float32Array, y: Float32Array): void;
  absTanhBackward(dy: Float32Array, x: Float32Array, y: Float32Array, dx: Float32Array): void;
  /** Fused |tanh| + max-pool, pool shape as maxPool2dForward: y = tanh(max over the window of |x|). */
  absTanhMaxPool2dForward(x: Float32Array, y: Float32Array, argmax: Int32Array, shape: number[]): void;
  absTanhMaxPool2dBackward(dy: Float32Array, argmax: Int32Array, x: Float32Array, y: Float32Array, dx: Float32Array, shape: number[]): void;
  sigmoidForward(x: Float32Array, y: Float32Array): void;
  sigmoidBackward(dy: Float32Array, y: Float32Array, dx: Float32Array): void;
  /** linear shape: [N, in, out] */
  linearForward(x: Float32Array, w: Float32Array, b: Float32Array | null, y: Float32Array, shape: number[]): void;
  linearBackwardInput(dy: Float32Array, w: Float32Array, dx: Float32Array, shape: number[]): void;
  linearBackwardWeight(x: Float32Array, dy: Float32Array, dw: Float32Array, db: Float32Array | null, shape: number[]): void;
  /**
   * Expected pair loss over binary codes (dynamic programming). pair shape: [N, n, P]. loss:
   * [P] per pair; gradP [N, n] and gradScalars [d/dalpha, d/dbeta] are of scale * sum_k w_k loss_k
   * (gradP null: forward only).
   */
  hammingDp(
    p: Float32Array,
    gradP: Float32Array | null,
    pairs: Int32Array,
    labels: Float32Array,
    weights: Float32Array | null,
    loss: Float64Array,
    gradScalars: Float64Array | null,
    shape: number[],
    alpha: number,
    beta: number,
    scale: number,
  ): void;
  /** Pair loss over the L1 distance of f, gradient directions from sign(s_a - s_b). Shapes as hammingDp. */
  pairL1Loss(
    f: Float32Array,
    s: Float32Array,
    gradF: Float32Array | null,
    pairs: Int32Array,
    labels: Float32Array,
    weights: Float32Array | null,
    loss: Float64Array,
    gradScalars: Float64Array | null,
    shape: number[],
    alpha: number,
    beta: number,
    scale: number,
  ): void;
  /** shape: [count, n, q] */
  quantizePack(p: Float32Array, codes: Int32Array, shape: number[]): void;
  /** shape: [count, n, q, hamming (0 | 1)] */
  codeDistances(a: Int32Array, b: Int32Array, dist: Uint32Array, shape: number[]): void;
  /**
   * One Adam / AdamW update in place (param, m, v; all four arrays of one length), float32:
   * p *= 1 - lr wd; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
   * p -= lr / biasCorrection1 * m / (sqrt(v) / biasCorrection2Sqrt + eps).
   */
  adamUpdate(
    param: Float32Array,
    grad: Float32Array,
    m: Float32Array,
    v: Float32Array,
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    weightDecay: number,
    biasCorrection1: number,
    biasCorrection2Sqrt: number,
  ): void;
}

export interface NativeCapabilities {
  isas: string[];
  isa: string;
  bestIsa: string;
  threads: number;
  hardwareThreads: number;
  cuda: { compiled: boolean; usable: boolean; reason: string };
}

/** The package root: dist/lib/native.js lives two folders below it. */
export const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

function load(): NativeAddon {
  const require = createRequire(import.meta.url);
  try {
    // DCL_ADDON names a specific .node file (a development build in another folder).
    const explicit = process.env.DCL_ADDON;
    if (explicit) return require(path.resolve(explicit)) as NativeAddon;
    const nodeGypBuild = require('node-gyp-build') as (dir: string) => NativeAddon;
    return nodeGypBuild(packageRoot);
  } catch (error) {
    throw new DclError(
      'E_LOAD',
      `Could not load the dcl-native addon (${(error as Error).message}). ` +
        'Reinstall the package or build it from source with `npm rebuild dcl-native` (needs cmake and a C++ compiler).',
      { cause: error },
    );
  }
}

const raw = load();

/** The addon with every function wrapped: native exceptions come out as DclError. */
export const native: NativeAddon = Object.fromEntries(
  Object.entries(raw).map(([name, fn]) => [
    name,
    (...args: unknown[]) => {
      try {
        return (fn as (...a: unknown[]) => unknown)(...args);
      } catch (error) {
        throw fromNativeError(error, name);
      }
    },
  ]),
) as unknown as NativeAddon;
