// The CUDA backend as validated functions: the same ops as lib/ops.ts, lib/losses.ts, lib/codes.ts,
// lib/scan.ts and the Adam update, run on the GPU (native/cuda/*.cu). Each takes host tensors and
// returns host tensors: the inputs are copied to the device, the kernel runs, the outputs are
// copied back (device memory comes from a caching allocator, so repeated calls do not call
// cudaMalloc). CudaBuffer holds device memory across calls for callers that keep data there.
//
// Every function checks its arguments first (E_ARG / E_SHAPE with the CPU ops' messages), then
// that CUDA is usable: otherwise it throws DclError E_CUDA with the reason (built without CUDA,
// 'CUDA driver version is insufficient for CUDA runtime version' on a machine without a driver,
// 'no CUDA-capable device is detected', ...). The results agree with the CPU kernels (the serial
// kernels are the oracles; test/cuda.test.ts): bit for bit for pooling argmax and gradients, the
// Adam update, quantization and the scans; within float32 rounding for the sums of products.
import { DclError } from './errors.js';
import { codesArray, parseLayout } from './codes.js';
import type { LayoutLike } from './codes.js';
import { checkPairBatch, pairGradScale, reducePairLosses } from './losses.js';
import { native } from './native.js';
import type { NativeCudaMemoryStats } from './native.js';
import type { CudaCapabilities } from './runtime.js';
import { allocateFloats, asTensor, expectShape, sameShape, Tensor } from './tensor.js';
import type { TensorLike } from './tensor.js';
import { describe, fail, knownKeys, MAX_ELEMENTS, nonNegativeInteger, pair, plainObject, positiveInteger } from './validate.js';

/** The CUDA status: compiled into this binary, usable here (and why not), the devices. A copy. */
export function cudaStatus(): CudaCapabilities {
  const s = native.cudaStatus();
  return { compiled: s.compiled, usable: s.usable, reason: s.reason, devices: s.devices.map((d) => ({ ...d })) };
}

/** True when the CUDA ops can run here. */
export function cudaAvailable(): boolean {
  return native.cudaStatus().usable;
}

/** Throws E_CUDA with the reason unless CUDA is usable. */
export function requireCuda(what: string): void {
  const s = native.cudaStatus();
  if (!s.usable) throw new DclError('E_CUDA', `Expected a usable CUDA device for ${what} but CUDA is not usable: ${s.reason ?? 'unknown reason'}`);
}

// ---------------------------------------------------------------------------------------------
// Device memory

type HostArray = Float32Array | Int32Array | Uint32Array | Float64Array;

/**
 * A block of device memory from the caching allocator. free() returns it to the cache (a freed
 * buffer throws E_ARG when used); buffers are not freed by the garbage collector.
 */
export class CudaBuffer {
  private id: number;

  private constructor(id: number, readonly byteLength: number) {
    this.id = id;
  }

  /** Allocates `byteLength` bytes (contents undefined). */
  static alloc(byteLength: number): CudaBuffer {
    nonNegativeInteger(byteLength, 'byteLength', 2 ** 52);
    requireCuda('CudaBuffer.alloc');
    return new CudaBuffer(native.cudaAlloc(byteLength), byteLength);
  }

  /** A buffer holding a copy of `data`. */
  static from(data: HostArray): CudaBuffer {
    hostArray(data, 'data');
    const b = CudaBuffer.alloc(data.byteLength);
    try {
      b.upload(data);
    } catch (error) {
      b.free();
      throw error;
    }
    return b;
  }

  /** The buffer number the native functions take (E_ARG once freed). */
  get handle(): number {
    if (this.id === 0) throw new DclError('E_ARG', 'Expected a live CudaBuffer but received one that was freed');
    return this.id;
  }

  get freed(): boolean {
    return this.id === 0;
  }

  /** Copies `data` to the start of the buffer. */
  upload(data: HostArray): void {
    hostArray(data, 'data');
    if (data.byteLength > this.byteLength)
      throw new DclError('E_SHAPE', `Expected at most ${this.byteLength} bytes for data but received ${data.byteLength} (${describe(data)})`);
    native.cudaUpload(this.handle, data);
  }

  /** Copies the start of the buffer into `out` (waits for the queued kernels). */
  download<T extends HostArray>(out: T): T {
    hostArray(out, 'out');
    if (out.byteLength > this.byteLength)
      throw new DclError('E_SHAPE', `Expected at most ${this.byteLength} bytes for out but received ${out.byteLength} (${describe(out)})`);
    native.cudaDownload(this.handle, out);
    return out;
  }

  free(): void {
    if (this.id !== 0) native.cudaFree(this.id);
    this.id = 0;
  }
}

function hostArray(value: unknown, name: string): HostArray {
  if (!(value instanceof Float32Array || value instanceof Int32Array || value instanceof Uint32Array || value instanceof Float64Array))
    fail('E_ARG', 'a Float32Array, Int32Array, Uint32Array or Float64Array', name, value);
  return value;
}

/** Waits for every queued kernel (an error a kernel met while running is thrown here). */
export function cudaSynchronize(): void {
  requireCuda('cudaSynchronize');
  native.cudaSynchronize();
}

/** The caching allocator's counters: bytes handed out and cached, cudaMalloc calls, reuses. */
export function cudaMemoryStats(): NativeCudaMemoryStats {
  return native.cudaMemoryStats();
}

/** Gives the allocator's cached (free) blocks back to the driver. */
export function cudaReleaseCached(): void {
  requireCuda('cudaReleaseCached');
  native.cudaReleaseCached();
}

/** The device's FP32 multiply-add throughput over about `seconds`, GFLOP/s (benchmarks). */
export function cudaFmaPeak(seconds = 0.25): number {
  if (typeof seconds !== 'number' || !(seconds > 0 && seconds <= 60)) fail('E_ARG', 'a number of seconds in (0, 60]', 'seconds', seconds);
  requireCuda('cudaFmaPeak');
  return native.cudaFmaPeak(seconds);
}

/** Device-to-device copy bandwidth over `bytes` (bytes read + written per second), GB/s. */
export function cudaCopyBandwidth(bytes = 256 * 2 ** 20, repeats = 20): number {
  positiveInteger(bytes, 'bytes', 2 ** 40);
  positiveInteger(repeats, 'repeats', 10_000);
  requireCuda('cudaCopyBandwidth');
  return native.cudaCopyBandwidth(bytes, repeats);
}

// ---------------------------------------------------------------------------------------------
// Convolution, pooling, activations, fully connected (argument checks as lib/ops.ts)

export interface CudaConv2dOptions {
  stride?: number | [number, number];
  padding?: number | [number, number];
}

function convGeometry(
  input: readonly number[],
  cout: number,
  kernel: [number, number],
  options: unknown,
  inputName: string,
  extra: readonly string[] = [],
) {
  const o = plainObject(options, 'options');
  knownKeys(o, ['stride', 'padding', ...extra], 'options');
  const [sh, sw] = pair(o.stride ?? 1, 'options.stride', (v, n) => positiveInteger(v, n, 1 << 16));
  const [ph, pw] = pair(o.padding ?? 0, 'options.padding', (v, n) => nonNegativeInteger(v, n, 1 << 16));
  const [n, cin, h, w] = input;
  const [kh, kw] = kernel;
  if (ph >= kh || pw >= kw)
    throw new DclError('E_ARG', `Expected padding smaller than the kernel (${kh}x${kw}) for options.padding but received [${ph}, ${pw}]`);
  if (h + 2 * ph < kh || w + 2 * pw < kw)
    throw new DclError(
      'E_SHAPE',
      `Expected an input at least as large as the ${kh}x${kw} kernel (after padding) for ${inputName} but received ${h}x${w} with padding [${ph}, ${pw}]`,
    );
  const oh = Math.floor((h + 2 * ph - kh) / sh) + 1;
  const ow = Math.floor((w + 2 * pw - kw) / sw) + 1;
  if (n * cout * oh * ow > MAX_ELEMENTS) fail('E_SHAPE', `an output of at most ${MAX_ELEMENTS} elements`, inputName, input);
  return { o, n, cin, h, w, cout, kh, kw, oh, ow, shape: [n, cin, h, w, cout, kh, kw, sh, sw, ph, pw] };
}

function sameChannels(wt: Tensor, cin: number, what: string): void {
  if (wt.shape[1] !== cin)
    throw new DclError('E_SHAPE', `Expected weight.shape[1] to equal ${what} (${cin}) but received weight shape [${wt.shape.join(', ')}]`);
}

function zeros(shape: number[]): Tensor {
  return new Tensor(allocateFloats(shape.reduce((a, b) => a * b, 1)), shape);
}

function optionalBias(bias: unknown, length: number): Tensor | null {
  if (bias === undefined || bias === null) return null;
  const b = asTensor(bias, 'bias', 1);
  expectShape(b, [length], 'bias');
  return b;
}

function shape4(value: unknown, name: string): number[] {
  if (!Array.isArray(value) || value.length !== 4) fail('E_SHAPE', 'a shape of 4 positive integers [N, C, H, W]', name, value);
  const shape = Array.from(value, (d, i) => positiveInteger(d, `${name}[${i}]`));
  if (shape.reduce((a, b) => a * b, 1) > MAX_ELEMENTS) fail('E_SHAPE', `a shape of at most ${MAX_ELEMENTS} elements`, name, value);
  return shape;
}

/** conv2d on the GPU. x: [N, Cin, H, W]; weight: [Cout, Cin, KH, KW]; bias: [Cout] or null. */
export function cudaConv2d(x: TensorLike, weight: TensorLike, bias?: TensorLike | null, options?: CudaConv2dOptions): Tensor {
  const xt = asTensor(x, 'x', 4);
  const wt = asTensor(weight, 'weight', 4);
  sameChannels(wt, xt.shape[1], 'the input channels');
  const g = convGeometry(xt.shape, wt.shape[0], [wt.shape[2], wt.shape[3]], options, 'x');
  const b = optionalBias(bias, g.cout);
  requireCuda('cudaConv2d');
  const y = zeros([g.n, g.cout, g.oh, g.ow]);
  native.cudaConv2dForward(xt.data, wt.data, b ? b.data : null, y.data, g.shape);
  return y;
}

/** conv2dBackwardInput on the GPU: dy [N, Cout, OH, OW], weight, inputShape [N, Cin, H, W]. */
export function cudaConv2dBackwardInput(dy: TensorLike, weight: TensorLike, inputShape: readonly number[], options?: CudaConv2dOptions): Tensor {
  const dyt = asTensor(dy, 'dy', 4);
  const wt = asTensor(weight, 'weight', 4);
  const xs = shape4(inputShape, 'inputShape');
  sameChannels(wt, xs[1], 'inputShape[1]');
  const g = convGeometry(xs, wt.shape[0], [wt.shape[2], wt.shape[3]], options, 'inputShape');
  expectShape(dyt, [g.n, g.cout, g.oh, g.ow], 'dy');
  requireCuda('cudaConv2dBackwardInput');
  const dx = zeros(xs);
  native.cudaConv2dBackwardInput(dyt.data, wt.data, dx.data, g.shape);
  return dx;
}

/** conv2dBackwardWeight on the GPU: { weight: [Cout, Cin, KH, KW], bias: [Cout] or null }. */
export function cudaConv2dBackwardWeight(
  x: TensorLike,
  dy: TensorLike,
  options: CudaConv2dOptions & { kernelSize: number | [number, number]; bias?: boolean },
): { weight: Tensor; bias: Tensor | null } {
  const xt = asTensor(x, 'x', 4);
  const dyt = asTensor(dy, 'dy', 4);
  if (options === undefined) fail('E_ARG', 'an options object with kernelSize', 'options', options);
  const o = plainObject(options, 'options');
  const kernel = pair(o.kernelSize, 'options.kernelSize', (v, n) => positiveInteger(v, n, 1 << 16));
  if (o.bias !== undefined && typeof o.bias !== 'boolean') fail('E_ARG', 'a boolean', 'options.bias', o.bias);
  const g = convGeometry(xt.shape, dyt.shape[1], kernel, options, 'x', ['kernelSize', 'bias']);
  expectShape(dyt, [g.n, g.cout, g.oh, g.ow], 'dy');
  requireCuda('cudaConv2dBackwardWeight');
  const dw = zeros([g.cout, g.cin, g.kh, g.kw]);
  const db = o.bias === false ? null : zeros([g.cout]);
  native.cudaConv2dBackwardWeight(xt.data, dyt.data, dw.data, db ? db.data : null, g.shape);
  return { weight: dw, bias: db };
}

export interface CudaPool2dOptions {
  kernelSize: number | [number, number];
  stride?: number | [number, number];
}

function poolGeometry(input: readonly number[], options: unknown, inputName = 'x') {
  if (options === undefined) fail('E_ARG', 'an options object with kernelSize', 'options', options);
  const o = plainObject(options, 'options');
  knownKeys(o, ['kernelSize', 'stride'], 'options');
  const [kh, kw] = pair(o.kernelSize, 'options.kernelSize', (v, n) => positiveInteger(v, n, 1 << 16));
  const [sh, sw] = pair(o.stride ?? [kh, kw], 'options.stride', (v, n) => positiveInteger(v, n, 1 << 16));
  const [n, c, h, w] = input;
  if (h < kh || w < kw) throw new DclError('E_SHAPE', `Expected an input at least ${kh}x${kw} (the pooling window) for ${inputName} but received ${h}x${w}`);
  const oh = Math.floor((h - kh) / sh) + 1;
  const ow = Math.floor((w - kw) / sw) + 1;
  return { shape: [n, c, h, w, kh, kw, sh, sw], out: [n, c, oh, ow] };
}

function poolForward(x: TensorLike, options: CudaPool2dOptions, fused: boolean): { output: Tensor; argmax: Int32Array } {
  const xt = asTensor(x, 'x', 4);
  const g = poolGeometry(xt.shape, options);
  requireCuda(fused ? 'cudaAbsTanhMaxPool2d' : 'cudaMaxPool2d');
  const y = zeros(g.out);
  const argmax = new Int32Array(y.size);
  if (fused) native.cudaAbsTanhMaxPool2dForward(xt.data, y.data, argmax, g.shape);
  else native.cudaMaxPool2dForward(xt.data, y.data, argmax, g.shape);
  return { output: y, argmax };
}

function checkArgmax(argmax: unknown, length: number): Int32Array {
  if (!(argmax instanceof Int32Array) || argmax.length !== length) fail('E_ARG', `an Int32Array of length ${length}`, 'argmax', argmax);
  return argmax;
}

/** maxPool2d on the GPU: the same output and argmax as the CPU (ties: the first maximum). */
export function cudaMaxPool2d(x: TensorLike, options: CudaPool2dOptions): { output: Tensor; argmax: Int32Array } {
  return poolForward(x, options, false);
}

/**
 * maxPool2dBackward on the GPU (bit-identical to the CPU). Every argmax must lie inside its own
 * window, as maxPool2d writes it (E_ARG otherwise).
 */
export function cudaMaxPool2dBackward(dy: TensorLike, argmax: Int32Array, inputShape: readonly number[], options: CudaPool2dOptions): Tensor {
  const dyt = asTensor(dy, 'dy', 4);
  const xs = shape4(inputShape, 'inputShape');
  const g = poolGeometry(xs, options, 'inputShape');
  expectShape(dyt, g.out, 'dy');
  const a = checkArgmax(argmax, dyt.size);
  requireCuda('cudaMaxPool2dBackward');
  const dx = zeros(xs);
  native.cudaMaxPool2dBackward(dyt.data, a, dx.data, g.shape, true);
  return dx;
}

/** absTanhMaxPool2d on the GPU: tanh(max over the window of |x|), argmax of the largest |x|. */
export function cudaAbsTanhMaxPool2d(x: TensorLike, options: CudaPool2dOptions): { output: Tensor; argmax: Int32Array } {
  return poolForward(x, options, true);
}

/** absTanhMaxPool2dBackward on the GPU (argmax as cudaMaxPool2dBackward requires it). */
export function cudaAbsTanhMaxPool2dBackward(dy: TensorLike, argmax: Int32Array, x: TensorLike, y: TensorLike, options: CudaPool2dOptions): Tensor {
  const dyt = asTensor(dy, 'dy', 4);
  const xt = asTensor(x, 'x', 4);
  const g = poolGeometry(xt.shape, options);
  expectShape(dyt, g.out, 'dy');
  const yt = asTensor(y, 'y', 4);
  expectShape(yt, g.out, 'y');
  const a = checkArgmax(argmax, dyt.size);
  requireCuda('cudaAbsTanhMaxPool2dBackward');
  const dx = zeros(xt.shape as number[]);
  native.cudaAbsTanhMaxPool2dBackward(dyt.data, a, xt.data, yt.data, dx.data, g.shape, true);
  return dx;
}

function elementwise(value: unknown, name: string, like?: Tensor): Tensor {
  const t = asTensor(value, name);
  if (like) expectShape(t, like.shape, name);
  return t;
}

/** y = |tanh(x)| on the GPU, any shape. */
export function cudaAbsTanh(x: TensorLike): Tensor {
  const xt = elementwise(x, 'x');
  requireCuda('cudaAbsTanh');
  const y = zeros(xt.shape as number[]);
  native.cudaAbsTanhForward(xt.data, y.data, xt.size);
  return y;
}

/** dx = dy sign(x) (1 - y^2) on the GPU. */
export function cudaAbsTanhBackward(dy: TensorLike, x: TensorLike, y: TensorLike): Tensor {
  const dyt = elementwise(dy, 'dy');
  const xt = elementwise(x, 'x', dyt);
  const yt = elementwise(y, 'y', dyt);
  requireCuda('cudaAbsTanhBackward');
  const dx = zeros(dyt.shape as number[]);
  native.cudaAbsTanhBackward(dyt.data, xt.data, yt.data, dx.data, dyt.size);
  return dx;
}

/** y = 1 / (1 + exp(-x)) on the GPU, any shape. */
export function cudaSigmoid(x: TensorLike): Tensor {
  const xt = elementwise(x, 'x');
  requireCuda('cudaSigmoid');
  const y = zeros(xt.shape as number[]);
  native.cudaSigmoidForward(xt.data, y.data, xt.size);
  return y;
}

/** dx = dy y (1 - y) on the GPU. */
export function cudaSigmoidBackward(dy: TensorLike, y: TensorLike): Tensor {
  const dyt = elementwise(dy, 'dy');
  const yt = elementwise(y, 'y', dyt);
  requireCuda('cudaSigmoidBackward');
  const dx = zeros(dyt.shape as number[]);
  native.cudaSigmoidBackward(dyt.data, yt.data, dx.data, dyt.size);
  return dx;
}

/** linear on the GPU: x [N, in], weight [out, in], bias [out] or null -> [N, out]. */
export function cudaLinear(x: TensorLike, weight: TensorLike, bias?: TensorLike | null): Tensor {
  const xt = asTensor(x, 'x', 2);
  const wt = asTensor(weight, 'weight', 2);
  if (wt.shape[1] !== xt.shape[1])
    throw new DclError('E_SHAPE', `Expected weight.shape[1] to equal x.shape[1] (${xt.shape[1]}) but received weight shape [${wt.shape.join(', ')}]`);
  const [n, inF] = xt.shape;
  const outF = wt.shape[0];
  const b = optionalBias(bias, outF);
  requireCuda('cudaLinear');
  const y = zeros([n, outF]);
  native.cudaLinearForward(xt.data, wt.data, b ? b.data : null, y.data, [n, inF, outF]);
  return y;
}

/** dx = dy weight on the GPU. dy: [N, out]; weight: [out, in]. */
export function cudaLinearBackwardInput(dy: TensorLike, weight: TensorLike): Tensor {
  const dyt = asTensor(dy, 'dy', 2);
  const wt = asTensor(weight, 'weight', 2);
  if (wt.shape[0] !== dyt.shape[1])
    throw new DclError('E_SHAPE', `Expected weight.shape[0] to equal dy.shape[1] (${dyt.shape[1]}) but received weight shape [${wt.shape.join(', ')}]`);
  const [n, outF] = dyt.shape;
  const inF = wt.shape[1];
  requireCuda('cudaLinearBackwardInput');
  const dx = zeros([n, inF]);
  native.cudaLinearBackwardInput(dyt.data, wt.data, dx.data, [n, inF, outF]);
  return dx;
}

/** { weight: dy^T x [out, in], bias: sum of dy [out] or null } on the GPU. */
export function cudaLinearBackwardWeight(x: TensorLike, dy: TensorLike, options?: { bias?: boolean }): { weight: Tensor; bias: Tensor | null } {
  const xt = asTensor(x, 'x', 2);
  const dyt = asTensor(dy, 'dy', 2);
  const o = plainObject(options, 'options');
  knownKeys(o, ['bias'], 'options');
  if (o.bias !== undefined && typeof o.bias !== 'boolean') fail('E_ARG', 'a boolean', 'options.bias', o.bias);
  if (dyt.shape[0] !== xt.shape[0])
    throw new DclError('E_SHAPE', `Expected dy.shape[0] to equal x.shape[0] (${xt.shape[0]}) but received dy shape [${dyt.shape.join(', ')}]`);
  const [n, inF] = xt.shape;
  const outF = dyt.shape[1];
  requireCuda('cudaLinearBackwardWeight');
  const dw = zeros([outF, inF]);
  const db = o.bias === false ? null : zeros([outF]);
  native.cudaLinearBackwardWeight(xt.data, dyt.data, dw.data, db ? db.data : null, [n, inF, outF]);
  return { weight: dw, bias: db };
}

// ---------------------------------------------------------------------------------------------
// Pair losses (options and results as lib/losses.ts)

export interface CudaPairBatchOptions {
  pairs: Int32Array | ReadonlyArray<readonly [number, number]>;
  labels: ArrayLike<number>;
  weights?: ArrayLike<number>;
  alpha: number;
  beta: number;
  reduction?: 'mean' | 'sum';
  gradOutput?: number;
  gradients?: boolean;
}

export interface CudaPairLossResult {
  loss: number;
  perPair: Float64Array;
  gradAlpha: number;
  gradBeta: number;
}

const BATCH_KEYS = ['pairs', 'labels', 'weights', 'alpha', 'beta', 'reduction', 'gradOutput', 'gradients'];

function finite(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) fail('E_ARG', 'a finite number', name, value);
  return value;
}

/** The pair batch of a CUDA pair loss: losses.ts's checks, with the reduction as a scale. */
function pairBatch(o: Record<string, unknown>, images: number) {
  const b = checkPairBatch(o, images);
  return { ...b, reduce: (values: Float64Array) => reducePairLosses(b, values), scale: pairGradScale(b) };
}

function checkRange(t: Tensor, name: string, ok: (v: number) => boolean, expected: string): void {
  const n = t.shape[1];
  for (let i = 0; i < t.data.length; i++)
    if (!ok(t.data[i])) fail('E_ARG', `${expected} (at [${Math.floor(i / n)}, ${i % n}])`, name, t.data[i]);
}

/** hammingDpLoss on the GPU: options { p [N, n <= 64], pairs, labels, ... } as lib/losses.ts. */
export function cudaHammingDpLoss(options: CudaPairBatchOptions & { p: TensorLike }): CudaPairLossResult & { gradP: Tensor | null } {
  if (options === undefined) fail('E_ARG', 'an options object with p, pairs, labels, alpha and beta', 'options', options);
  const o = plainObject(options, 'options');
  knownKeys(o, ['p', ...BATCH_KEYS], 'options');
  const p = asTensor(o.p, 'options.p', 2);
  const [images, n] = p.shape;
  if (n > 64) throw new DclError('E_SHAPE', `Expected at most 64 bits per code for options.p but received shape [${p.shape.join(', ')}]`);
  checkRange(p, 'options.p', (v) => v >= 0 && v <= 1, 'probabilities in [0, 1]');
  const b = pairBatch(o, images);
  requireCuda('cudaHammingDpLoss');
  const loss = new Float64Array(b.count);
  const gradP = b.gradients ? zeros([images, n]) : null;
  const scalars = b.gradients ? new Float64Array(2) : null;
  native.cudaHammingDp(p.data, gradP ? gradP.data : null, b.pairs, b.labels, b.weights, loss, scalars, [images, n, b.count], b.alpha, b.beta, b.scale);
  return { loss: b.reduce(loss), perPair: loss, gradP, gradAlpha: scalars ? scalars[0] : Number.NaN, gradBeta: scalars ? scalars[1] : Number.NaN };
}

/** pairL1Loss on the GPU: options { values [N, n], signs?, pairs, labels, ... } as lib/losses.ts. */
export function cudaPairL1Loss(options: CudaPairBatchOptions & { values: TensorLike; signs?: TensorLike }): CudaPairLossResult & { gradValues: Tensor | null } {
  if (options === undefined) fail('E_ARG', 'an options object with values, pairs, labels, alpha and beta', 'options', options);
  const o = plainObject(options, 'options');
  knownKeys(o, ['values', 'signs', ...BATCH_KEYS], 'options');
  const values = asTensor(o.values, 'options.values', 2);
  const signs = o.signs === undefined ? values : asTensor(o.signs, 'options.signs', 2);
  if (!sameShape(signs.shape, values.shape))
    throw new DclError('E_SHAPE', `Expected shape [${values.shape.join(', ')}] (that of options.values) for options.signs but received shape [${signs.shape.join(', ')}]`);
  const [images, n] = values.shape;
  checkRange(values, 'options.values', Number.isFinite, 'finite values');
  if (signs !== values) checkRange(signs, 'options.signs', Number.isFinite, 'finite values');
  const b = pairBatch(o, images);
  requireCuda('cudaPairL1Loss');
  const loss = new Float64Array(b.count);
  const grad = b.gradients ? zeros([images, n]) : null;
  const scalars = b.gradients ? new Float64Array(2) : null;
  native.cudaPairL1Loss(values.data, signs.data, grad ? grad.data : null, b.pairs, b.labels, b.weights, loss, scalars, [images, n, b.count], b.alpha, b.beta, b.scale);
  return { loss: b.reduce(loss), perPair: loss, gradValues: grad, gradAlpha: scalars ? scalars[0] : Number.NaN, gradBeta: scalars ? scalars[1] : Number.NaN };
}

// ---------------------------------------------------------------------------------------------
// Codes

/** quantize on the GPU: p [N, n] (n = the layout's n) -> Int32Array of N packed codes. */
export function cudaQuantize(p: TensorLike, layout: LayoutLike): Int32Array {
  const l = parseLayout(layout);
  const t = asTensor(p, 'p', 2);
  if (t.shape[1] !== l.n) throw new DclError('E_SHAPE', `Expected p of shape [N, ${l.n}] (layout ${l.name}) but received shape [${t.shape.join(', ')}]`);
  requireCuda('cudaQuantize');
  const codes = new Int32Array(t.shape[0]);
  native.cudaQuantizePack(t.data, codes, [t.shape[0], l.n, l.q]);
  return codes;
}

/** Largest k cudaKnnScan accepts (the per-thread lists of the kernel). */
export const CUDA_KNN_MAX_K = 64;

/** knnScan on the GPU (exact, the CPU's order: by distance, then index); k <= CUDA_KNN_MAX_K. */
export function cudaKnnScan(
  database: Int32Array | Uint32Array,
  queries: Int32Array | Uint32Array,
  layout: LayoutLike,
  k: number,
  options?: { metric?: 'layout' | 'l1' | 'hamming' },
): { indices: Int32Array; distances: Uint32Array; k: number } {
  const l = parseLayout(layout);
  const db = codesArray(database, l, 'database');
  const q = codesArray(queries, l, 'queries');
  const o = plainObject(options, 'options');
  knownKeys(o, ['metric'], 'options');
  const metric = o.metric ?? 'layout';
  if (metric !== 'layout' && metric !== 'l1' && metric !== 'hamming') fail('E_ARG', "'layout', 'l1' or 'hamming'", 'options.metric', metric);
  positiveInteger(k, 'k', CUDA_KNN_MAX_K);
  if (q.length * k > MAX_ELEMENTS) throw new DclError('E_ARG', `Expected k with queries * k <= ${MAX_ELEMENTS} for k but received ${k}`);
  requireCuda('cudaKnnScan');
  const indices = new Int32Array(q.length * k);
  const distances = new Uint32Array(q.length * k);
  if (q.length > 0) native.cudaCodeKnn(db, q, indices, distances, [db.length, q.length, l.n, l.q, metric === 'hamming' ? 1 : 0, k]);
  return { indices, distances, k };
}

// ---------------------------------------------------------------------------------------------
// Optimiser

export interface CudaAdamOptions {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /** The update number t >= 1 (bias corrections 1 - beta1^t, sqrt(1 - beta2^t)). */
  step: number;
}

/**
 * One Adam / AdamW update on the GPU, in place on param, m and v (Float32Arrays of one length):
 * bit-identical to the CPU kernel (torch.optim.AdamW semantics, decoupled weight decay).
 */
export function cudaAdamUpdate(param: Float32Array, grad: Float32Array, m: Float32Array, v: Float32Array, options: CudaAdamOptions): void {
  const arrays = { param, grad, m, v };
  for (const [name, a] of Object.entries(arrays)) {
    if (!(a instanceof Float32Array)) fail('E_ARG', 'a Float32Array', name, a);
    if (a.length !== param.length) fail('E_SHAPE', `a Float32Array of length ${param.length} (that of param)`, name, a);
  }
  const o = plainObject(options, 'options');
  knownKeys(o, ['lr', 'beta1', 'beta2', 'eps', 'weightDecay', 'step'], 'options');
  const lr = finite(o.lr, 'options.lr');
  const beta1 = o.beta1 === undefined ? 0.9 : finite(o.beta1, 'options.beta1');
  const beta2 = o.beta2 === undefined ? 0.999 : finite(o.beta2, 'options.beta2');
  if (!(beta1 >= 0 && beta1 < 1)) fail('E_ARG', 'a number in [0, 1)', 'options.beta1', beta1);
  if (!(beta2 >= 0 && beta2 < 1)) fail('E_ARG', 'a number in [0, 1)', 'options.beta2', beta2);
  const eps = o.eps === undefined ? 1e-8 : finite(o.eps, 'options.eps');
  const weightDecay = o.weightDecay === undefined ? 0 : finite(o.weightDecay, 'options.weightDecay');
  const t = positiveInteger(o.step, 'options.step', 2 ** 52);
  requireCuda('cudaAdamUpdate');
  native.cudaAdamUpdate(param, grad, m, v, param.length, lr, beta1, beta2, eps, weightDecay, 1 - beta1 ** t, Math.sqrt(1 - beta2 ** t));
}
