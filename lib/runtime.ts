// What the CPU can do and which ISA / how many threads the kernels use.
import { DclError } from './errors.js';
import { native } from './native.js';
import { describe, positiveInteger } from './validate.js';

export type Isa = 'serial' | 'avx2' | 'avx512';
export const ALL_ISAS: readonly Isa[] = ['serial', 'avx2', 'avx512'];

export interface Capabilities {
  /** Instruction sets this CPU and OS can run, from the reference `serial` to the widest. */
  isas: Isa[];
  /** The ISA the kernels use now. */
  isa: Isa;
  /** Threads in the native pool (DCL_THREADS, default the number of cores). */
  threads: number;
  hardwareThreads: number;
  /**
   * Whether CUDA kernels are compiled into this binary and a usable GPU is present, and why not
   * (reason: null when usable), with the devices the driver reports.
   */
  cuda: CudaCapabilities;
}

export interface CudaDeviceInfo {
  name: string;
  /** 'major.minor', e.g. '9.0' for an H100. */
  computeCapability: string;
  memoryBytes: number;
  smCount: number;
}

export interface CudaCapabilities {
  compiled: boolean;
  usable: boolean;
  reason: string | null;
  devices: CudaDeviceInfo[];
}

export function capabilities(): Capabilities {
  const c = native.capabilities();
  return {
    isas: c.isas as Isa[],
    isa: c.isa as Isa,
    threads: c.threads,
    hardwareThreads: c.hardwareThreads,
    cuda: { ...c.cuda, devices: c.cuda.devices.map((d) => ({ ...d })) },
  };
}

/** Chooses the ISA the kernels use. An ISA this CPU cannot run is an error (E_ISA), never a silent fallback. */
export function setIsa(isa: Isa): void {
  if (typeof isa !== 'string' || !ALL_ISAS.includes(isa as Isa))
    throw new DclError('E_ARG', `Expected one of ${ALL_ISAS.join(', ')} for isa but received ${describe(isa)}`);
  const supported = native.capabilities().isas;
  if (!supported.includes(isa))
    throw new DclError('E_ISA', `Expected an ISA this CPU supports (${supported.join(', ')}) for isa but received '${isa}'`);
  native.setIsa(isa);
}

/** Sets the number of native threads (1..256). */
export function setThreads(threads: number): void {
  native.setThreads(positiveInteger(threads, 'threads', 256));
}

/**
 * How the SIMD paths (avx2, avx512) compute 3x3, stride-1, padding-1 convolutions, forward and
 * both gradients: 'winograd' uses Winograd F(2x2, 3x3) (2.25x fewer multiplications; float32
 * results differ from the direct sum by a few rounding errors), 'direct' the direct convolution,
 * 'auto' (the default) Winograd when the layer has at least 8 input and 8 output channels. The
 * serial ISA always runs the direct convolution.
 */
export type ConvAlgorithm = 'auto' | 'direct' | 'winograd';
export const ALL_CONV_ALGORITHMS: readonly ConvAlgorithm[] = ['auto', 'direct', 'winograd'];

/** Chooses the conv algorithm (process-wide; DCL_CONV_ALGO sets it at import). */
export function setConvAlgorithm(algorithm: ConvAlgorithm): void {
  if (typeof algorithm !== 'string' || !ALL_CONV_ALGORITHMS.includes(algorithm as ConvAlgorithm))
    throw new DclError('E_ARG', `Expected one of ${ALL_CONV_ALGORITHMS.join(', ')} for algorithm but received ${describe(algorithm)}`);
  native.setConvAlgorithm(algorithm);
}

/** The conv algorithm in use (see setConvAlgorithm). */
export function convAlgorithm(): ConvAlgorithm {
  return native.convAlgorithm() as ConvAlgorithm;
}

/** Runs `fn` with `isa` active, restoring the previous ISA afterwards (tests, benchmarks). */
export function withIsa<T>(isa: Isa, fn: () => T): T {
  const previous = native.capabilities().isa as Isa;
  setIsa(isa);
  try {
    return fn();
  } finally {
    native.setIsa(previous);
  }
}

/** Measures the FP32 multiply-add peak of `isa` on `threads` threads over about `seconds`, in GFLOP/s. */
export function measureFmaPeak(isa: Isa, threads: number, seconds = 0.25): number {
  if (!ALL_ISAS.includes(isa))
    throw new DclError('E_ARG', `Expected one of ${ALL_ISAS.join(', ')} for isa but received ${describe(isa)}`);
  if (!native.capabilities().isas.includes(isa))
    throw new DclError('E_ISA', `Expected an ISA this CPU supports for isa but received '${isa}'`);
  positiveInteger(threads, 'threads', native.capabilities().threads);
  if (typeof seconds !== 'number' || !(seconds > 0 && seconds <= 60))
    throw new DclError('E_ARG', `Expected a number of seconds in (0, 60] for seconds but received ${describe(seconds)}`);
  return native.fmaPeak(isa, threads, seconds);
}

/** Applies DCL_ISA, DCL_THREADS and DCL_CONV_ALGO from the environment once, when the package is loaded. */
export function applyEnvironment(env: NodeJS.ProcessEnv = process.env): void {
  const isa = env.DCL_ISA;
  if (isa !== undefined && isa !== '') {
    if (!ALL_ISAS.includes(isa as Isa))
      throw new DclError('E_ARG', `Expected one of ${ALL_ISAS.join(', ')} for DCL_ISA but received '${isa}'`);
    const supported = native.capabilities().isas;
    if (!supported.includes(isa))
      throw new DclError('E_ISA', `Expected an ISA this CPU supports (${supported.join(', ')}) for DCL_ISA but received '${isa}'`);
    native.setIsa(isa);
  }
  const threads = env.DCL_THREADS;
  if (threads !== undefined && threads !== '') {
    const n = Number(threads);
    if (!/^\d+$/.test(threads) || !(n >= 1 && n <= 256))
      throw new DclError('E_ARG', `Expected an integer from 1 to 256 for DCL_THREADS but received '${threads}'`);
    native.setThreads(n);
  }
  const algorithm = env.DCL_CONV_ALGO;
  if (algorithm !== undefined && algorithm !== '') {
    if (!ALL_CONV_ALGORITHMS.includes(algorithm as ConvAlgorithm))
      throw new DclError('E_ARG', `Expected one of ${ALL_CONV_ALGORITHMS.join(', ')} for DCL_CONV_ALGO but received '${algorithm}'`);
    native.setConvAlgorithm(algorithm);
  }
}
