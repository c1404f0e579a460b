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
  sigmoidForward(x: Float32Array, y: Float32Array): void;
  sigmoidBackward(dy: Float32Array, y: Float32Array, dx: Float32Array): void;
  /** linear shape: [N, in, out] */
  linearForward(x: Float32Array, w: Float32Array, b: Float32Array | null, y: Float32Array, shape: number[]): void;
  linearBackwardInput(dy: Float32Array, w: Float32Array, dx: Float32Array, shape: number[]): void;
  linearBackwardWeight(x: Float32Array, dy: Float32Array, dw: Float32Array, db: Float32Array | null, shape: number[]): void;
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
