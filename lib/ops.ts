// The CPU kernels as validated functions over tensors (NCHW). Each checks every argument and
// throws DclError before native code sees anything (the one exception: the values inside an argmax
// array are range-checked by the kernel as it scatters, so on that error `out` may be partly
// written); outputs are new tensors unless `out` is given.
import { DclError } from './errors.js';
import { native } from './native.js';
import { allocateFloats, asTensor, expectShape, Tensor } from './tensor.js';
import type { TensorLike } from './tensor.js';
import { fail, knownKeys, overlaps, nonNegativeInteger, pair, plainObject, positiveInteger, MAX_ELEMENTS } from './validate.js';

export interface Conv2dOptions {
  /** Step between windows: one integer or [h, w]. Default 1. */
  stride?: number | [number, number];
  /** Zeros added on each side: one integer or [h, w], smaller than the kernel. Default 0. */
  padding?: number | [number, number];
  /** Write the result here instead of allocating (shape must match). */
  out?: Tensor;
}

interface ConvGeometry {
  n: number;
  cin: number;
  h: number;
  w: number;
  cout: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  ph: number;
  pw: number;
  oh: number;
  ow: number;
}

function convOptions(options: unknown, name: string, extra: readonly string[] = []) {
  const o = plainObject(options, name);
  knownKeys(o, ['stride', 'padding', 'out', ...extra], name);
  const stride = pair(o.stride ?? 1, `${name}.stride`, (v, n) => positiveInteger(v, n, 1 << 16));
  const padding = pair(o.padding ?? 0, `${name}.padding`, (v, n) => nonNegativeInteger(v, n, 1 << 16));
  return { o, stride, padding };
}

function convGeometry(
  input: readonly number[],
  cout: number,
  kernel: [number, number],
  stride: [number, number],
  padding: [number, number],
  names: { input: string; options: string },
): ConvGeometry {
  const [n, cin, h, w] = input;
  const [kh, kw] = kernel;
  const [sh, sw] = stride;
  const [ph, pw] = padding;
  if (ph >= kh || pw >= kw)
    throw new DclError(
      'E_ARG',
      `Expected padding smaller than the kernel (${kh}x${kw}) for ${names.options}.padding but received [${ph}, ${pw}]`,
    );
  if (h + 2 * ph < kh || w + 2 * pw < kw)
    throw new DclError(
      'E_SHAPE',
      `Expected an input at least as large as the ${kh}x${kw} kernel (after padding) for ${names.input} but received ${h}x${w} with padding [${ph}, ${pw}]`,
    );
  const oh = Math.floor((h + 2 * ph - kh) / sh) + 1;
  const ow = Math.floor((w + 2 * pw - kw) / sw) + 1;
  if (n * cout * oh * ow > MAX_ELEMENTS) fail('E_SHAPE', `an output of at most ${MAX_ELEMENTS} elements`, names.input, input);
  return { n, cin, h, w, cout, kh, kw, sh, sw, ph, pw, oh, ow };
}

function convShapeArray(g: ConvGeometry): number[] {
  return [g.n, g.cin, g.h, g.w, g.cout, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw];
}

function outputTensor(out: unknown, shape: number[], name: string, inputs: Tensor[] = []): Tensor {
  if (out === undefined) return new Tensor(allocateFloats(shape.reduce((a, b) => a * b, 1)), shape);
  const t = asTensor(out, name);
  expectShape(t, shape, name);
  for (const input of inputs)
    if (overlaps(t.data, input.data))
      throw new DclError('E_ARG', `Expected ${name} not to share memory with an input of the call but it does`);
  return t;
}

function optionalBias(bias: unknown, length: number, name: string): Tensor | null {
  if (bias === undefined || bias === null) return null;
  const b = asTensor(bias, name, 1);
  expectShape(b, [length], name);
  return b;
}

/**
 * 2-D convolution (cross-correlation, as in every deep-learning library).
 * x: [N, Cin, H, W]; weight: [Cout, Cin, KH, KW]; bias: [Cout] or null. Returns [N, Cout, OH, OW]
 * with OH = floor((H + 2 padding - KH) / stride) + 1.
 */
export function conv2d(x: TensorLike, weight: TensorLike, bias?: TensorLike | null, options?: Conv2dOptions): Tensor {
  const xt = asTensor(x, 'x', 4);
  const wt = asTensor(weight, 'weight', 4);
  const { o, stride, padding } = convOptions(options, 'options');
  if (wt.shape[1] !== xt.shape[1])
    throw new DclError(
      'E_SHAPE',
      `Expected weight.shape[1] to equal the input channels (${xt.shape[1]}) but received weight shape [${wt.shape.join(', ')}]`,
    );
  const g = convGeometry(xt.shape, wt.shape[0], [wt.shape[2], wt.shape[3]], stride, padding, { input: 'x', options: 'options' });
  const b = optionalBias(bias, g.cout, 'bias');
  const y = outputTensor(o.out, [g.n, g.cout, g.oh, g.ow], 'options.out', b ? [xt, wt, b] : [xt, wt]);
  native.conv2dForward(xt.data, wt.data, b ? b.data : null, y.data, convShapeArray(g));
  return y;
}

/**
 * Conv weights prepared for inference by conv2dPrepare: the forward's weight operand in the layout
 * the active ISA's kernel reads under the current conv algorithm (the Winograd transform, the
 * direct path's packed panel, or for serial a copy), computed once instead of on every call. A
 * plain Float32Array owned by JavaScript; it does not follow later changes of the weights.
 */
export interface PreparedConv2dWeight {
  readonly data: Float32Array;
  /** [Cout, Cin, KH, KW] of the weight it was prepared from. */
  readonly weightShape: readonly number[];
  readonly stride: [number, number];
  readonly padding: [number, number];
  /** kernelSettings() when it was prepared: the ISA and conv algorithm it is valid for. */
  readonly settings: number;
}

/**
 * The active ISA and conv algorithm as one integer that changes whenever either does (setIsa,
 * withIsa, setConvAlgorithm, from any thread): the key under which prepared weights stay valid.
 */
export function kernelSettings(): number {
  return native.kernelSettings();
}

/**
 * Prepares weight [Cout, Cin, KH, KW] of a conv layer with the given stride and padding for
 * conv2dPrepared, for the ISA and conv algorithm active now (prepare again after changing either;
 * conv2dPrepared throws E_ARG otherwise). The layout does not depend on the batch or image size.
 */
export function conv2dPrepare(weight: TensorLike, options: { stride?: number | [number, number]; padding?: number | [number, number] } = {}): PreparedConv2dWeight {
  const wt = asTensor(weight, 'weight', 4);
  const { stride, padding } = convOptions(options, 'options');
  const [cout, cin, kh, kw] = wt.shape;
  // The layout depends on the channels, kernel, stride and padding only: a nominal kh x kw image.
  const g = convGeometry([1, cin, kh, kw], cout, [kh, kw], stride, padding, { input: 'weight', options: 'options' });
  const settings = native.kernelSettings();
  const shape = convShapeArray(g);
  const data = allocateFloats(native.conv2dPreparedFloats(shape));
  native.conv2dPrepare(wt.data, data, shape);
  return { data, weightShape: Object.freeze([...wt.shape]), stride, padding, settings };
}

/**
 * conv2d with weights prepared by conv2dPrepare: bit for bit what conv2d(x, weight, bias, { stride,
 * padding }) gives with the weight they were prepared from. Throws E_ARG when the ISA or the conv
 * algorithm changed since they were prepared.
 */
export function conv2dPrepared(x: TensorLike, prepared: PreparedConv2dWeight, bias?: TensorLike | null, options: { out?: Tensor } = {}): Tensor {
  const xt = asTensor(x, 'x', 4);
  if (prepared === null || typeof prepared !== 'object' || !(prepared.data instanceof Float32Array) || !Array.isArray(prepared.weightShape))
    fail('E_ARG', 'prepared weights from conv2dPrepare', 'prepared', prepared);
  const o = plainObject(options, 'options');
  knownKeys(o, ['out'], 'options');
  const [cout, cin, kh, kw] = prepared.weightShape;
  if (cin !== xt.shape[1])
    throw new DclError(
      'E_SHAPE',
      `Expected x.shape[1] to equal the input channels of the prepared weights (${cin}) but received x shape [${xt.shape.join(', ')}]`,
    );
  if (prepared.settings !== native.kernelSettings())
    throw new DclError('E_ARG', 'Expected prepared weights for the active ISA and conv algorithm but received weights prepared under another setting: prepare them again');
  const g = convGeometry(xt.shape, cout, [kh, kw], prepared.stride, prepared.padding, { input: 'x', options: 'prepared' });
  const b = optionalBias(bias, g.cout, 'bias');
  const y = outputTensor(o.out, [g.n, g.cout, g.oh, g.ow], 'options.out', b ? [xt, b] : [xt]);
  if (overlaps(y.data, prepared.data)) throw new DclError('E_ARG', 'Expected options.out not to share memory with prepared but it does');
  native.conv2dForwardPrepared(xt.data, prepared.data, b ? b.data : null, y.data, convShapeArray(g));
  return y;
}

/**
 * Gradient of conv2d with respect to its input. dy: [N, Cout, OH, OW]; weight: [Cout, Cin, KH, KW];
 * inputShape: [N, Cin, H, W] (needed because several input sizes give the same output size).
 */
export function conv2dBackwardInput(
  dy: Tensor,
  weight: Tensor,
  inputShape: readonly number[],
  options?: Conv2dOptions,
): Tensor {
  const dyt = asTensor(dy, 'dy', 4);
  const wt = asTensor(weight, 'weight', 4);
  const xs = shapeOf(inputShape, 'inputShape');
  const { o, stride, padding } = convOptions(options, 'options');
  if (wt.shape[1] !== xs[1])
    throw new DclError(
      'E_SHAPE',
      `Expected weight.shape[1] to equal inputShape[1] (${xs[1]}) but received weight shape [${wt.shape.join(', ')}]`,
    );
  const g = convGeometry(xs, wt.shape[0], [wt.shape[2], wt.shape[3]], stride, padding, { input: 'inputShape', options: 'options' });
  expectShape(dyt, [g.n, g.cout, g.oh, g.ow], 'dy');
  const dx = outputTensor(o.out, xs, 'options.out', [dyt, wt]);
  native.conv2dBackwardInput(dyt.data, wt.data, dx.data, convShapeArray(g));
  return dx;
}

export interface Conv2dWeightGradOptions extends Omit<Conv2dOptions, 'out'> {
  /** Kernel size: one integer or [h, w]. Required. */
  kernelSize: number | [number, number];
  /** Also compute the bias gradient (sum of dy). Default true. */
  bias?: boolean;
  out?: { weight?: Tensor; bias?: Tensor };
}

/** Gradients of conv2d with respect to the weight [Cout, Cin, KH, KW] and the bias [Cout]. */
export function conv2dBackwardWeight(
  x: Tensor,
  dy: Tensor,
  options: Conv2dWeightGradOptions,
): { weight: Tensor; bias: Tensor | null } {
  const xt = asTensor(x, 'x', 4);
  const dyt = asTensor(dy, 'dy', 4);
  if (options === undefined) fail('E_ARG', 'an options object with kernelSize', 'options', options);
  const { o, stride, padding } = convOptions(options, 'options', ['kernelSize', 'bias']);
  const kernel = pair(o.kernelSize, 'options.kernelSize', (v, n) => positiveInteger(v, n, 1 << 16));
  if (o.bias !== undefined && typeof o.bias !== 'boolean') fail('E_ARG', 'a boolean', 'options.bias', o.bias);
  const g = convGeometry(xt.shape, dyt.shape[1], kernel, stride, padding, { input: 'x', options: 'options' });
  expectShape(dyt, [g.n, g.cout, g.oh, g.ow], 'dy');
  const out = o.out === undefined ? {} : plainObject(o.out, 'options.out');
  knownKeys(out, ['weight', 'bias'], 'options.out');
  const dw = outputTensor(out.weight, [g.cout, g.cin, g.kh, g.kw], 'options.out.weight', [xt, dyt]);
  const db = o.bias === false ? null : outputTensor(out.bias, [g.cout], 'options.out.bias', [xt, dyt, dw]);
  native.conv2dBackwardWeight(xt.data, dyt.data, dw.data, db ? db.data : null, convShapeArray(g));
  return { weight: dw, bias: db };
}

function shapeOf(value: unknown, name: string): number[] {
  if (!Array.isArray(value) || value.length !== 4) fail('E_SHAPE', 'a shape of 4 positive integers [N, C, H, W]', name, value);
  const shape = Array.from(value, (d, i) => positiveInteger(d, `${name}[${i}]`));
  if (shape.reduce((a, b) => a * b, 1) > MAX_ELEMENTS) fail('E_SHAPE', `a shape of at most ${MAX_ELEMENTS} elements`, name, value);
  return shape;
}

export interface Pool2dOptions {
  /** Window size: one integer or [h, w]. */
  kernelSize: number | [number, number];
  /** Step between windows. Default: the kernel size. */
  stride?: number | [number, number];
}

function poolGeometry(input: readonly number[], options: unknown, name: string, extra: readonly string[] = [], inputName = 'x') {
  if (options === undefined) fail('E_ARG', 'an options object with kernelSize', name, options);
  const o = plainObject(options, name);
  knownKeys(o, ['kernelSize', 'stride', ...extra], name);
  const [kh, kw] = pair(o.kernelSize, `${name}.kernelSize`, (v, n) => positiveInteger(v, n, 1 << 16));
  const [sh, sw] = pair(o.stride ?? [kh, kw], `${name}.stride`, (v, n) => positiveInteger(v, n, 1 << 16));
  const [n, c, h, w] = input;
  if (h < kh || w < kw)
    throw new DclError('E_SHAPE', `Expected an input at least ${kh}x${kw} (the pooling window) for ${inputName} but received ${h}x${w}`);
  const oh = Math.floor((h - kh) / sh) + 1;
  const ow = Math.floor((w - kw) / sw) + 1;
  return { o, shape: [n, c, h, w, kh, kw, sh, sw], out: [n, c, oh, ow] };
}

/** The checked arguments of a pooling forward: input, geometry, and output and argmax buffers. */
function poolForwardArguments(x: unknown, options: unknown) {
  const xt = asTensor(x, 'x', 4);
  const g = poolGeometry(xt.shape, options, 'options', ['out']);
  const out = g.o.out === undefined ? {} : plainObject(g.o.out, 'options.out');
  knownKeys(out, ['output', 'argmax'], 'options.out');
  const y = outputTensor(out.output, g.out, 'options.out.output', [xt]);
  const size = g.out.reduce((a, b) => a * b, 1);
  if (out.argmax !== undefined && (!(out.argmax instanceof Int32Array) || out.argmax.length !== size))
    fail('E_ARG', `an Int32Array of length ${size}`, 'options.out.argmax', out.argmax);
  const argmax = (out.argmax as Int32Array | undefined) ?? new Int32Array(size);
  if (overlaps(argmax, xt.data) || overlaps(argmax, y.data))
    throw new DclError('E_ARG', 'Expected options.out.argmax not to share memory with x or options.out.output but it does');
  return { xt, g, y, argmax };
}

/**
 * Max-pooling over windows of each channel. x: [N, C, H, W]. Returns the pooled values
 * [N, C, OH, OW] and, for the backward pass, argmax: the index (h * W + w) of each window's winner
 * within its plane (ties: the first maximum row by row; NaN never wins over a number).
 */
export function maxPool2d(
  x: Tensor,
  options: Pool2dOptions & { out?: { output?: Tensor; argmax?: Int32Array } },
): { output: Tensor; argmax: Int32Array } {
  const { xt, g, y, argmax } = poolForwardArguments(x, options);
  native.maxPool2dForward(xt.data, y.data, argmax, g.shape);
  return { output: y, argmax };
}

/** Gradient of maxPool2d: scatters dy to the winners recorded in argmax. Returns [N, C, H, W]. */
export function maxPool2dBackward(
  dy: Tensor,
  argmax: Int32Array,
  inputShape: readonly number[],
  options: Pool2dOptions & { out?: Tensor },
): Tensor {
  const dyt = asTensor(dy, 'dy', 4);
  const xs = shapeOf(inputShape, 'inputShape');
  const g = poolGeometry(xs, options, 'options', ['out'], 'inputShape');
  expectShape(dyt, g.out, 'dy');
  if (!(argmax instanceof Int32Array) || argmax.length !== dyt.size)
    fail('E_ARG', `an Int32Array of length ${dyt.size}`, 'argmax', argmax);
  const dx = outputTensor(g.o.out, xs, 'options.out', [dyt]);
  if (overlaps(dx.data, argmax)) throw new DclError('E_ARG', 'Expected options.out not to share memory with argmax but it does');
  // The kernel checks each argmax index against the plane while it scatters (E_ARG if outside):
  // an index outside would write outside dx.
  native.maxPool2dBackward(dyt.data, argmax, dx.data, g.shape);
  return dx;
}

/**
 * Fused |tanh| + max-pooling: the same values as maxPool2d(absTanh(x)), computed as
 * tanh(max over the window of |x|) (tanh is increasing on x >= 0), so tanh runs on the pooled
 * values only. x: [N, C, H, W]. argmax: index (h * W + w) of each window's element with the largest
 * |x| within its plane (ties: the first, row by row; NaN never wins over a number).
 */
export function absTanhMaxPool2d(
  x: Tensor,
  options: Pool2dOptions & { out?: { output?: Tensor; argmax?: Int32Array } },
): { output: Tensor; argmax: Int32Array } {
  const { xt, g, y, argmax } = poolForwardArguments(x, options);
  native.absTanhMaxPool2dForward(xt.data, y.data, argmax, g.shape);
  return { output: y, argmax };
}

/**
 * Gradient of absTanhMaxPool2d: dx [N, C, H, W] is zero except at each window's winner, where
 * dx[argmax] += dy * sign(x[argmax]) * (1 - y^2) (sign(0) = 0; overlapping windows add up).
 * dy, y: [N, C, OH, OW]; x: the forward input.
 */
export function absTanhMaxPool2dBackward(
  dy: Tensor,
  argmax: Int32Array,
  x: Tensor,
  y: Tensor,
  options: Pool2dOptions & { out?: Tensor },
): Tensor {
  const dyt = asTensor(dy, 'dy', 4);
  const xt = asTensor(x, 'x', 4);
  const g = poolGeometry(xt.shape, options, 'options', ['out']);
  expectShape(dyt, g.out, 'dy');
  const yt = asTensor(y, 'y', 4);
  expectShape(yt, g.out, 'y');
  if (!(argmax instanceof Int32Array) || argmax.length !== dyt.size)
    fail('E_ARG', `an Int32Array of length ${dyt.size}`, 'argmax', argmax);
  const dx = outputTensor(g.o.out, xt.shape as number[], 'options.out', [dyt, xt, yt]);
  if (overlaps(dx.data, argmax)) throw new DclError('E_ARG', 'Expected options.out not to share memory with argmax but it does');
  // The kernel range-checks each argmax index as it scatters (E_ARG if outside the plane).
  native.absTanhMaxPool2dBackward(dyt.data, argmax, xt.data, yt.data, dx.data, g.shape);
  return dx;
}

// Element-wise ops may write in place (out is exactly an input) but not into a shifted overlap,
// where a vector store would overwrite inputs not yet read.
function elementwiseOut(out: unknown, like: Tensor, name: string, inputs: Tensor[] = [like]): Tensor {
  const t = outputTensor(out, like.shape as number[], name);
  for (const input of inputs) {
    const a = t.data, b = input.data;
    const identical = a.buffer === b.buffer && a.byteOffset === b.byteOffset && a.length === b.length;
    if (!identical && overlaps(a, b))
      throw new DclError('E_ARG', `Expected ${name} to be either an input itself or separate memory but it partly overlaps one`);
  }
  return t;
}

function elementwiseInput(value: unknown, name: string, like?: Tensor): Tensor {
  const t = asTensor(value, name);
  if (like) expectShape(t, like.shape, name);
  return t;
}

/** y = |tanh(x)|, element-wise, any shape. */
export function absTanh(x: TensorLike, options?: { out?: Tensor }): Tensor {
  const xt = elementwiseInput(x, 'x');
  const o = plainObject(options, 'options');
  knownKeys(o, ['out'], 'options');
  const y = elementwiseOut(o.out, xt, 'options.out');
  native.absTanhForward(xt.data, y.data);
  return y;
}

/** Gradient of |tanh|: dx = dy * sign(x) * (1 - y^2), with y = |tanh(x)| and sign(0) = 0. */
export function absTanhBackward(dy: TensorLike, x: TensorLike, y: TensorLike, options?: { out?: Tensor }): Tensor {
  const dyt = elementwiseInput(dy, 'dy');
  const xt = elementwiseInput(x, 'x', dyt);
  const yt = elementwiseInput(y, 'y', dyt);
  const o = plainObject(options, 'options');
  knownKeys(o, ['out'], 'options');
  const dx = elementwiseOut(o.out, dyt, 'options.out', [dyt, xt, yt]);
  native.absTanhBackward(dyt.data, xt.data, yt.data, dx.data);
  return dx;
}

/** y = 1 / (1 + exp(-x)), element-wise, any shape. */
export function sigmoid(x: TensorLike, options?: { out?: Tensor }): Tensor {
  const xt = elementwiseInput(x, 'x');
  const o = plainObject(options, 'options');
  knownKeys(o, ['out'], 'options');
  const y = elementwiseOut(o.out, xt, 'options.out');
  native.sigmoidForward(xt.data, y.data);
  return y;
}

/** Gradient of sigmoid: dx = dy * y * (1 - y), with y = sigmoid(x). */
export function sigmoidBackward(dy: TensorLike, y: TensorLike, options?: { out?: Tensor }): Tensor {
  const dyt = elementwiseInput(dy, 'dy');
  const yt = elementwiseInput(y, 'y', dyt);
  const o = plainObject(options, 'options');
  knownKeys(o, ['out'], 'options');
  const dx = elementwiseOut(o.out, dyt, 'options.out', [dyt, yt]);
  native.sigmoidBackward(dyt.data, yt.data, dx.data);
  return dx;
}

/**
 * Fully connected layer y = x weight^T + bias. x: [N, in]; weight: [out, in]; bias: [out] or null.
 * Returns [N, out].
 */
export function linear(x: TensorLike, weight: TensorLike, bias?: TensorLike | null, options?: { out?: Tensor }): Tensor {
  const xt = asTensor(x, 'x', 2);
  const wt = asTensor(weight, 'weight', 2);
  const o = plainObject(options, 'options');
  knownKeys(o, ['out'], 'options');
  if (wt.shape[1] !== xt.shape[1])
    throw new DclError(
      'E_SHAPE',
      `Expected weight.shape[1] to equal x.shape[1] (${xt.shape[1]}) but received weight shape [${wt.shape.join(', ')}]`,
    );
  const [n, inF] = xt.shape;
  const outF = wt.shape[0];
  const b = optionalBias(bias, outF, 'bias');
  const y = outputTensor(o.out, [n, outF], 'options.out', b ? [xt, wt, b] : [xt, wt]);
  native.linearForward(xt.data, wt.data, b ? b.data : null, y.data, [n, inF, outF]);
  return y;
}

/** Gradient of linear with respect to x: dx = dy weight. dy: [N, out]; weight: [out, in]. */
export function linearBackwardInput(dy: TensorLike, weight: TensorLike, options?: { out?: Tensor }): Tensor {
  const dyt = asTensor(dy, 'dy', 2);
  const wt = asTensor(weight, 'weight', 2);
  const o = plainObject(options, 'options');
  knownKeys(o, ['out'], 'options');
  if (wt.shape[0] !== dyt.shape[1])
    throw new DclError(
      'E_SHAPE',
      `Expected weight.shape[0] to equal dy.shape[1] (${dyt.shape[1]}) but received weight shape [${wt.shape.join(', ')}]`,
    );
  const [n, outF] = dyt.shape;
  const inF = wt.shape[1];
  const dx = outputTensor(o.out, [n, inF], 'options.out', [dyt, wt]);
  native.linearBackwardInput(dyt.data, wt.data, dx.data, [n, inF, outF]);
  return dx;
}

/** Gradients of linear with respect to weight (dy^T x, [out, in]) and bias (sum of dy, [out]). */
export function linearBackwardWeight(
  x: Tensor,
  dy: Tensor,
  options?: { bias?: boolean; out?: { weight?: Tensor; bias?: Tensor } },
): { weight: Tensor; bias: Tensor | null } {
  const xt = asTensor(x, 'x', 2);
  const dyt = asTensor(dy, 'dy', 2);
  const o = plainObject(options, 'options');
  knownKeys(o, ['bias', 'out'], 'options');
  if (o.bias !== undefined && typeof o.bias !== 'boolean') fail('E_ARG', 'a boolean', 'options.bias', o.bias);
  if (dyt.shape[0] !== xt.shape[0])
    throw new DclError(
      'E_SHAPE',
      `Expected dy.shape[0] to equal x.shape[0] (${xt.shape[0]}) but received dy shape [${dyt.shape.join(', ')}]`,
    );
  const [n, inF] = xt.shape;
  const outF = dyt.shape[1];
  const out = o.out === undefined ? {} : plainObject(o.out, 'options.out');
  knownKeys(out, ['weight', 'bias'], 'options.out');
  const dw = outputTensor(out.weight, [outF, inF], 'options.out.weight', [xt, dyt]);
  const db = o.bias === false ? null : outputTensor(out.bias, [outF], 'options.out.bias', [xt, dyt, dw]);
  native.linearBackwardWeight(xt.data, dyt.data, dw.data, db ? db.data : null, [n, inF, outF]);
  return { weight: dw, bias: db };
}

