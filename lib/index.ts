// dcl-native: compact face codes packed into one int32, on hand-written native kernels.
import { applyEnvironment } from './runtime.js';

export { DclError } from './errors.js';
export type { DclErrorCode } from './errors.js';
export { Tensor, CpuStorage } from './tensor.js';
export type { Device, Storage, TensorLike } from './tensor.js';
export { capabilities, setIsa, setThreads, withIsa, measureFmaPeak, ALL_ISAS } from './runtime.js';
export type { Capabilities, Isa } from './runtime.js';
export * as ops from './ops.js';
export {
  conv2d,
  conv2dBackwardInput,
  conv2dBackwardWeight,
  maxPool2d,
  maxPool2dBackward,
  absTanh,
  absTanhBackward,
  sigmoid,
  sigmoidBackward,
  linear,
  linearBackwardInput,
  linearBackwardWeight,
} from './ops.js';
export type { Conv2dOptions, Conv2dWeightGradOptions, Pool2dOptions } from './ops.js';

// DCL_ISA / DCL_THREADS are read once, when the package is first imported.
applyEnvironment();
