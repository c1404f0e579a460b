// Bad input: every public entry point must reject it with a DclError (code E_ARG, E_SHAPE or
// E_ISA) whose message reads "Expected <what> for <argument> but received <what came>", before any
// native code runs — never a TypeError, a crash, or a silent wrong result.
//
// 1. A seeded fuzz suite: 1,500 random invalid calls, each a valid call with one thing broken.
// 2. Targeted tests that the messages name the argument at fault.
// 3. DCL_ISA / DCL_THREADS at import time, checked in child processes.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  absTanh,
  absTanhBackward,
  ALL_ISAS,
  capabilities,
  conv2d,
  conv2dBackwardInput,
  conv2dBackwardWeight,
  DclError,
  linear,
  linearBackwardInput,
  linearBackwardWeight,
  maxPool2d,
  maxPool2dBackward,
  measureFmaPeak,
  setIsa,
  setThreads,
  sigmoid,
  sigmoidBackward,
  Tensor,
} from '../lib/index.js';
import { conv2dForwardRef, convGeometry, randomFloat32, Rng } from './reference.js';
import { assertClose, sumTolerance } from './helpers.js';

const test = suite('errors');

/** The message contract of lib/validate.ts: "Expected <what> for <name> ..." (or "... to <...>"). */
const MESSAGE = /Expected .* (for|to) /;
const CODES = new Set(['E_ARG', 'E_SHAPE', 'E_ISA']);
const FUZZ_SEED = Number(process.env.DCL_FUZZ_SEED ?? 20261128);
const FUZZ_CALLS = 1500;

// Calls made on purpose with wrong types: the public signatures are typed, the fuzz is not.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyFn = (...args: any[]) => unknown;
const call = (fn: unknown, ...args: unknown[]) => () => (fn as AnyFn)(...args);

/** What a call threw, or 'no error'. */
function outcome(thunk: () => unknown): { error?: unknown; returned?: unknown } {
  try {
    return { returned: thunk() };
  } catch (error) {
    return { error };
  }
}

/** Why `error` breaks the contract, or null when it is a proper DclError. */
function violation(error: unknown, threw: boolean): string | null {
  if (!threw) return 'did not throw';
  if (!(error instanceof DclError)) return `threw ${error instanceof Error ? `${error.constructor.name}: ${error.message}` : String(error)}, not a DclError`;
  if (!CODES.has(error.code)) return `code ${error.code}, expected E_ARG / E_SHAPE / E_ISA (message: ${error.message})`;
  if (!MESSAGE.test(error.message)) return `message does not read "Expected ... for/to ...": ${error.message}`;
  if (/native code/.test(error.message)) return `reached native code before failing: ${error.message}`;
  return null;
}

function expectDclError(thunk: () => unknown, code: string, pattern: RegExp, label: string): DclError {
  const r = outcome(thunk);
  const v = violation(r.error, 'error' in r);
  if (v) assert.unreachable(`${label}: ${v}`);
  const e = r.error as DclError;
  assert.is(e.code, code, `${label}: code (message: ${e.message})`);
  assert.match(e.message, pattern, `${label}: message`);
  return e;
}

// ---------------------------------------------------------------------------------------------
// Values that are not tensors, not shapes, not integers

const f32 = (n: number) => new Float32Array(n);

/** `shape` with its first entry missing (a hole, as in [, 4]): length unchanged, index 0 absent. */
function holey(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  for (let i = 1; i < shape.length; i++) s[i] = shape[i];
  return s;
}

/** Things that are not a tensor (for any argument that wants one). */
function badTensor(rng: Rng, size: number, shape: number[]): { value: unknown; what: string } {
  const options: [string, () => unknown][] = [
    ['null', () => null],
    ['undefined', () => undefined],
    ['a number', () => 3],
    ['a string', () => 'tensor'],
    ['a boolean', () => true],
    ['a bigint', () => 5n],
    ['a symbol', () => Symbol('t')],
    ['a function', () => () => 1],
    ['a plain array', () => Array.from({ length: size }, () => 1)],
    ['a bare Float32Array', () => f32(size)],
    ['an empty object', () => ({})],
    ['Float64Array data', () => ({ data: new Float64Array(size), shape })],
    ['Int32Array data', () => ({ data: new Int32Array(size), shape })],
    ['Uint8Array data', () => ({ data: new Uint8Array(size * 4), shape })],
    ['plain-array data', () => ({ data: Array.from({ length: size }, () => 0), shape })],
    ['null data', () => ({ data: null, shape })],
    ['data without shape', () => ({ data: f32(size) })],
    ['shape without data', () => ({ shape })],
    ['data one too short', () => ({ data: f32(size - 1), shape })],
    ['data one too long', () => ({ data: f32(size + 1), shape })],
    ['a string shape', () => ({ data: f32(size), shape: 'abc' })],
    ['a null shape', () => ({ data: f32(size), shape: null })],
    ['an empty shape', () => ({ data: f32(size), shape: [] })],
    ['a zero dimension', () => ({ data: f32(0), shape: [...shape.slice(0, -1), 0] })],
    ['a negative dimension', () => ({ data: f32(size), shape: [...shape.slice(0, -1), -shape[shape.length - 1]] })],
    ['a fractional dimension', () => ({ data: f32(size), shape: [...shape.slice(0, -1), shape[shape.length - 1] + 0.5] })],
    ['a NaN dimension', () => ({ data: f32(size), shape: [...shape.slice(0, -1), NaN] })],
    ['an infinite dimension', () => ({ data: f32(size), shape: [...shape.slice(0, -1), Infinity] })],
    ['a string dimension', () => ({ data: f32(size), shape: shape.map(String) })],
    ['a huge shape', () => ({ data: f32(size), shape: [...shape, 2 ** 31] })],
    ['a shape of more than 2^31 elements', () => ({ data: f32(size), shape: [65536, 65536] })],
  ];
  const [what, make] = rng.pick(options);
  return { value: make(), what };
}

/** Not a positive integer (for sizes, strides, kernel sizes, thread counts). */
const BAD_POSITIVE: unknown[] = [0, -1, -7, 1.5, 0.1, NaN, Infinity, -Infinity, 2 ** 53, '2', '', null, true, [], {}, 2n, 2 ** 16 + 1];
/** Not a non-negative integer (for paddings). */
const BAD_NON_NEGATIVE: unknown[] = [-1, -0.5, 0.5, NaN, Infinity, '0', '', null, false, {}, 1n, 2 ** 16 + 1];
/** Not an options object. */
const BAD_OPTIONS: unknown[] = [null, 0, 1, 'options', true, [], [1, 2], () => ({})];

function badPair(rng: Rng, bad: unknown[]): unknown {
  switch (rng.int(0, 4)) {
    case 0:
      // (null alone means "the default" for stride and padding: not an error.)
      return rng.pick(bad.filter((v) => v !== null));
    case 1:
      return [1, rng.pick(bad)];
    case 2:
      return [rng.pick(bad), 2];
    case 3:
      return rng.pick([[], [1], [1, 1, 1]]);
    default:
      return rng.pick(['2x2', { h: 1, w: 1 }]);
  }
}

/** A tensor of the right size whose rank is wrong for a rank-`rank` argument. */
function wrongRank(rng: Rng, shape: number[], rank: number): Tensor {
  const size = shape.reduce((a, b) => a * b, 1);
  const choices = [[size], [1, size], [1, 1, size], [1, 1, 1, size], [1, 1, 1, 1, size]].filter((s) => s.length !== rank);
  return new Tensor(f32(size), rng.pick(choices));
}

const T = (shape: number[]) => new Tensor(f32(shape.reduce((a, b) => a * b, 1)), shape);

// ---------------------------------------------------------------------------------------------
// Invalid-call generators: a valid call of each public function with one thing broken.

interface Invalid {
  fn: string;
  what: string;
  thunk: () => unknown;
}

type Generator = (rng: Rng) => Invalid;

function convSetup(rng: Rng) {
  const k: [number, number] = [rng.int(1, 3), rng.int(1, 3)];
  const s: [number, number] = [rng.int(1, 2), rng.int(1, 2)];
  const p: [number, number] = [rng.int(0, k[0] - 1), rng.int(0, k[1] - 1)];
  const n = rng.int(1, 2);
  const cin = rng.int(1, 4);
  const cout = rng.int(1, 4);
  const h = rng.int(3, 6);
  const w = rng.int(3, 6);
  const g = convGeometry(n, cin, h, w, cout, k, s, p);
  return {
    g,
    xShape: [n, cin, h, w],
    wShape: [cout, cin, k[0], k[1]],
    yShape: [n, cout, g.oh, g.ow],
    opts: { stride: s, padding: p } as Record<string, unknown>,
    k,
  };
}

const conv2dFuzz: Generator = (rng) => {
  const c = convSetup(rng);
  const x = T(c.xShape);
  const w = T(c.wShape);
  const b = rng.bool() ? T([c.wShape[0]]) : null;
  const opts = { ...c.opts };
  const r = rng.int(0, 13);
  const fn = 'conv2d';
  switch (r) {
    case 0: {
      const bad = badTensor(rng, x.size, c.xShape);
      return { fn, what: `x is ${bad.what}`, thunk: call(conv2d, bad.value, w, b, opts) };
    }
    case 1: {
      const bad = badTensor(rng, w.size, c.wShape);
      return { fn, what: `weight is ${bad.what}`, thunk: call(conv2d, x, bad.value, b, opts) };
    }
    case 2:
      return { fn, what: 'x of the wrong rank', thunk: call(conv2d, wrongRank(rng, c.xShape, 4), w, b, opts) };
    case 3:
      return { fn, what: 'weight of the wrong rank', thunk: call(conv2d, x, wrongRank(rng, c.wShape, 4), b, opts) };
    case 4:
      return { fn, what: 'weight with other input channels', thunk: call(conv2d, x, T([c.wShape[0], c.wShape[1] + rng.int(1, 3), c.k[0], c.k[1]]), b, opts) };
    case 5: {
      const bad = rng.bool(0.3) ? { value: T([c.wShape[0] + 1]), what: 'the wrong length' } : rng.bool() ? { value: T([c.wShape[0], 1]), what: 'rank 2' } : badTensor(rng, c.wShape[0], [c.wShape[0]]);
      if (bad.value === null || bad.value === undefined) return { fn, what: 'bias [Cout, 1]', thunk: call(conv2d, x, w, T([c.wShape[0], 1]), opts) };
      return { fn, what: `bias is ${bad.what}`, thunk: call(conv2d, x, w, bad.value, opts) };
    }
    case 6:
      return { fn, what: 'options not an object', thunk: call(conv2d, x, w, b, rng.pick(BAD_OPTIONS)) };
    case 7:
      return { fn, what: 'an unknown option', thunk: call(conv2d, x, w, b, { ...opts, [rng.pick(['strides', 'pad', 'kernelSize', 'bias', 'dilation', 'Stride'])]: 1 }) };
    case 8:
      return { fn, what: 'a bad stride', thunk: call(conv2d, x, w, b, { ...opts, stride: badPair(rng, BAD_POSITIVE) }) };
    case 9:
      return { fn, what: 'a bad padding', thunk: call(conv2d, x, w, b, { ...opts, padding: badPair(rng, BAD_NON_NEGATIVE) }) };
    case 10: {
      const pad = rng.bool() ? [c.k[0] + rng.int(0, 2), 0] : [0, c.k[1] + rng.int(0, 2)];
      return { fn, what: 'padding >= kernel', thunk: call(conv2d, x, w, b, { ...opts, padding: pad }) };
    }
    case 11: {
      // A 5x5 kernel without padding on an image smaller than 5 in one direction.
      const small = rng.bool() ? [c.xShape[0], c.xShape[1], rng.int(1, 4), 6] : [c.xShape[0], c.xShape[1], 6, rng.int(1, 4)];
      return { fn, what: 'input smaller than the kernel', thunk: call(conv2d, T(small), T([2, c.xShape[1], 5, 5]), null, {}) };
    }
    case 12: {
      const shape = rng.pick([[...c.yShape.slice(0, 3), c.yShape[3] + 1], [c.yShape[0] + 1, ...c.yShape.slice(1)], c.yShape.slice(1)]);
      return { fn, what: 'out of the wrong shape', thunk: call(conv2d, x, w, b, { ...opts, out: T(shape) }) };
    }
    default: {
      // out overlapping the weight's memory.
      const ySize = c.yShape.reduce((a, q) => a * q, 1);
      const buffer = f32(w.size + ySize);
      const wv = new Tensor(buffer.subarray(0, w.size), c.wShape);
      const out = new Tensor(buffer.subarray(w.size - 1, w.size - 1 + ySize), c.yShape);
      return { fn, what: 'out sharing memory with the weight', thunk: call(conv2d, x, wv, b, { ...opts, out }) };
    }
  }
};

const conv2dBackwardInputFuzz: Generator = (rng) => {
  const c = convSetup(rng);
  const dy = T(c.yShape);
  const w = T(c.wShape);
  const opts = { ...c.opts };
  const fn = 'conv2dBackwardInput';
  switch (rng.int(0, 10)) {
    case 0: {
      const bad = badTensor(rng, dy.size, c.yShape);
      return { fn, what: `dy is ${bad.what}`, thunk: call(conv2dBackwardInput, bad.value, w, c.xShape, opts) };
    }
    case 1: {
      const bad = badTensor(rng, w.size, c.wShape);
      return { fn, what: `weight is ${bad.what}`, thunk: call(conv2dBackwardInput, dy, bad.value, c.xShape, opts) };
    }
    case 2: {
      const shape = rng.pick([[...c.yShape.slice(0, 3), c.yShape[3] + 1], [c.yShape[0], c.yShape[1] + 1, c.yShape[2], c.yShape[3]], [c.yShape[0] + 1, ...c.yShape.slice(1)]]);
      return { fn, what: 'dy of the wrong shape', thunk: call(conv2dBackwardInput, T(shape), w, c.xShape, opts) };
    }
    case 3: {
      const bad = rng.pick<unknown>([
        undefined,
        null,
        'shape',
        5,
        c.xShape.slice(1),
        [...c.xShape, 1],
        [c.xShape[0], c.xShape[1], c.xShape[2], rng.pick(BAD_POSITIVE)],
        [rng.pick(BAD_POSITIVE), ...c.xShape.slice(1)],
        [c.xShape[0], c.xShape[1] + 1, c.xShape[2], c.xShape[3]],
        T(c.xShape),
        holey(c.xShape),
      ]);
      return { fn, what: `inputShape ${Array.isArray(bad) ? `[${bad.map(String)}]` : String(bad)}`, thunk: call(conv2dBackwardInput, dy, w, bad, opts) };
    }
    case 4: {
      // Dimensions each valid, the product past 2^31: rejected without allocating 2^40 floats.
      const big = [1, c.xShape[1], 2 ** 20, 2 ** 20];
      const wk = T([c.wShape[0], c.xShape[1], 1, 1]);
      const oh = Math.floor((2 ** 20 - 1) / 65536) + 1;
      return { fn, what: 'an inputShape of 2^40 elements', thunk: call(conv2dBackwardInput, T([1, c.wShape[0], oh, oh]), wk, big, { stride: 65536 }) };
    }
    case 5:
      return { fn, what: 'options not an object', thunk: call(conv2dBackwardInput, dy, w, c.xShape, rng.pick(BAD_OPTIONS)) };
    case 6:
      return { fn, what: 'an unknown option', thunk: call(conv2dBackwardInput, dy, w, c.xShape, { ...opts, kernelSize: c.k }) };
    case 7:
      return { fn, what: 'a bad stride', thunk: call(conv2dBackwardInput, dy, w, c.xShape, { ...opts, stride: badPair(rng, BAD_POSITIVE) }) };
    case 8:
      return { fn, what: 'padding >= kernel', thunk: call(conv2dBackwardInput, dy, w, c.xShape, { ...opts, padding: [c.k[0], c.k[1]] }) };
    case 9:
      return { fn, what: 'weight of the wrong rank', thunk: call(conv2dBackwardInput, dy, wrongRank(rng, c.wShape, 4), c.xShape, opts) };
    default:
      return { fn, what: 'out of the wrong shape', thunk: call(conv2dBackwardInput, dy, w, c.xShape, { ...opts, out: T([...c.xShape.slice(0, 3), c.xShape[3] + 1]) }) };
  }
};

const conv2dBackwardWeightFuzz: Generator = (rng) => {
  const c = convSetup(rng);
  const x = T(c.xShape);
  const dy = T(c.yShape);
  const opts = { ...c.opts, kernelSize: c.k };
  const fn = 'conv2dBackwardWeight';
  switch (rng.int(0, 10)) {
    case 0: {
      const bad = badTensor(rng, x.size, c.xShape);
      return { fn, what: `x is ${bad.what}`, thunk: call(conv2dBackwardWeight, bad.value, dy, opts) };
    }
    case 1: {
      const bad = badTensor(rng, dy.size, c.yShape);
      return { fn, what: `dy is ${bad.what}`, thunk: call(conv2dBackwardWeight, x, bad.value, opts) };
    }
    case 2: {
      // Cout is read from dy, so only N and the spatial size can disagree.
      const shape = rng.pick([[...c.yShape.slice(0, 3), c.yShape[3] + 1], [c.yShape[0], c.yShape[1], c.yShape[2] + 1, c.yShape[3]], [c.yShape[0] + 1, ...c.yShape.slice(1)]]);
      return { fn, what: 'dy of the wrong shape', thunk: call(conv2dBackwardWeight, x, T(shape), opts) };
    }
    case 3:
      return { fn, what: 'no options', thunk: call(conv2dBackwardWeight, x, dy) };
    case 4:
      return { fn, what: 'options without kernelSize', thunk: call(conv2dBackwardWeight, x, dy, { ...c.opts }) };
    case 5:
      return { fn, what: 'a bad kernelSize', thunk: call(conv2dBackwardWeight, x, dy, { ...opts, kernelSize: badPair(rng, BAD_POSITIVE) }) };
    case 6:
      return { fn, what: 'a non-boolean bias option', thunk: call(conv2dBackwardWeight, x, dy, { ...opts, bias: rng.pick([1, 0, 'true', null, {}]) }) };
    case 7:
      return { fn, what: 'an unknown option', thunk: call(conv2dBackwardWeight, x, dy, { ...opts, [rng.pick(['kernel', 'weights', 'groups'])]: 1 }) };
    case 8:
      return { fn, what: 'options.out not an object / unknown key', thunk: call(conv2dBackwardWeight, x, dy, { ...opts, out: rng.pick<unknown>([5, 'out', null, { weights: T(c.wShape) }, { grad: 1 }]) }) };
    case 9:
      return { fn, what: 'out.weight of the wrong shape', thunk: call(conv2dBackwardWeight, x, dy, { ...opts, out: { weight: T([c.wShape[0] + 1, ...c.wShape.slice(1)]) } }) };
    default:
      return { fn, what: 'out.bias of the wrong shape', thunk: call(conv2dBackwardWeight, x, dy, { ...opts, out: { bias: T([c.wShape[0] + 2]) } }) };
  }
};

function poolSetup(rng: Rng) {
  const k: [number, number] = [rng.int(1, 3), rng.int(1, 3)];
  const s: [number, number] = [rng.int(1, 3), rng.int(1, 3)];
  const n = rng.int(1, 2);
  const ch = rng.int(1, 3);
  const h = rng.int(3, 7);
  const w = rng.int(3, 7);
  const oh = Math.floor((h - k[0]) / s[0]) + 1;
  const ow = Math.floor((w - k[1]) / s[1]) + 1;
  return { xShape: [n, ch, h, w], yShape: [n, ch, oh, ow], opts: { kernelSize: k, stride: s } as Record<string, unknown>, k, plane: h * w };
}

const maxPool2dFuzz: Generator = (rng) => {
  const c = poolSetup(rng);
  const x = T(c.xShape);
  const fn = 'maxPool2d';
  switch (rng.int(0, 8)) {
    case 0: {
      const bad = badTensor(rng, x.size, c.xShape);
      return { fn, what: `x is ${bad.what}`, thunk: call(maxPool2d, bad.value, c.opts) };
    }
    case 1:
      return { fn, what: 'x of the wrong rank', thunk: call(maxPool2d, wrongRank(rng, c.xShape, 4), c.opts) };
    case 2:
      return { fn, what: 'no options / not an object', thunk: call(maxPool2d, x, rng.pick([undefined, ...BAD_OPTIONS])) };
    case 3:
      return { fn, what: 'a bad kernelSize', thunk: call(maxPool2d, x, { ...c.opts, kernelSize: badPair(rng, BAD_POSITIVE) }) };
    case 4:
      return { fn, what: 'a bad stride', thunk: call(maxPool2d, x, { ...c.opts, stride: badPair(rng, BAD_POSITIVE) }) };
    case 5:
      return { fn, what: 'an unknown option', thunk: call(maxPool2d, x, { ...c.opts, [rng.pick(['padding', 'kernel', 'dilation'])]: 1 }) };
    case 6: {
      const k = rng.bool() ? [c.xShape[2] + rng.int(1, 3), 1] : [1, c.xShape[3] + rng.int(1, 3)];
      return { fn, what: 'a window larger than the input', thunk: call(maxPool2d, x, { kernelSize: k }) };
    }
    case 7:
      return { fn, what: 'out.output of the wrong shape', thunk: call(maxPool2d, x, { ...c.opts, out: { output: T([...c.yShape.slice(0, 3), c.yShape[3] + 1]) } }) };
    default: {
      const size = c.yShape.reduce((a, b) => a * b, 1);
      const bad = rng.pick<unknown>([new Float32Array(size), new Uint32Array(size), new Int32Array(size + 1), Array.from({ length: size }, () => 0), 'argmax']);
      return { fn, what: 'out.argmax not an Int32Array of the output size', thunk: call(maxPool2d, x, { ...c.opts, out: { argmax: bad } }) };
    }
  }
};

const maxPool2dBackwardFuzz: Generator = (rng) => {
  const c = poolSetup(rng);
  const dy = T(c.yShape);
  const argmax = new Int32Array(dy.size);
  const fn = 'maxPool2dBackward';
  switch (rng.int(0, 8)) {
    case 0: {
      const bad = badTensor(rng, dy.size, c.yShape);
      return { fn, what: `dy is ${bad.what}`, thunk: call(maxPool2dBackward, bad.value, argmax, c.xShape, c.opts) };
    }
    case 1:
      return { fn, what: 'dy of the wrong shape', thunk: call(maxPool2dBackward, T([...c.yShape.slice(0, 3), c.yShape[3] + 1]), new Int32Array(dy.size + c.yShape[0] * c.yShape[1] * c.yShape[2]), c.xShape, c.opts) };
    case 2: {
      const bad = rng.pick<unknown>([null, undefined, new Float32Array(dy.size), new Uint32Array(dy.size), new Int16Array(dy.size), Array.from({ length: dy.size }, () => 0), new Int32Array(dy.size + 1), new Int32Array(Math.max(0, dy.size - 1))]);
      return { fn, what: 'argmax not an Int32Array of dy.size', thunk: call(maxPool2dBackward, dy, bad, c.xShape, c.opts) };
    }
    case 3: {
      const bad = new Int32Array(dy.size);
      bad[rng.int(0, dy.size - 1)] = rng.pick([-1, c.plane, c.plane + 7, 2 ** 31 - 1, -(2 ** 31)]);
      return { fn, what: 'an argmax value outside the plane', thunk: call(maxPool2dBackward, dy, bad, c.xShape, c.opts) };
    }
    case 4:
      return { fn, what: 'a bad inputShape', thunk: call(maxPool2dBackward, dy, argmax, rng.pick<unknown>([null, 'x', c.xShape.slice(1), [...c.xShape.slice(0, 3), 0], [...c.xShape.slice(0, 3), 2.5], holey(c.xShape)]), c.opts) };
    case 5:
      return { fn, what: 'no options / not an object', thunk: call(maxPool2dBackward, dy, argmax, c.xShape, rng.pick([undefined, ...BAD_OPTIONS])) };
    case 6:
      return { fn, what: 'a bad kernelSize', thunk: call(maxPool2dBackward, dy, argmax, c.xShape, { ...c.opts, kernelSize: badPair(rng, BAD_POSITIVE) }) };
    case 7:
      return { fn, what: 'out of the wrong shape', thunk: call(maxPool2dBackward, dy, argmax, c.xShape, { ...c.opts, out: T([c.xShape[0], c.xShape[1] + 1, c.xShape[2], c.xShape[3]]) }) };
    default: {
      // out sharing memory with argmax.
      const size = c.xShape.reduce((a, b) => a * b, 1);
      const buffer = new ArrayBuffer(4 * (size + dy.size));
      const out = new Tensor(new Float32Array(buffer, 0, size), c.xShape);
      const am = new Int32Array(buffer, 4 * (size - 1), dy.size);
      return { fn, what: 'out sharing memory with argmax', thunk: call(maxPool2dBackward, dy, am, c.xShape, { ...c.opts, out }) };
    }
  }
};

function elementwiseShape(rng: Rng): number[] {
  return rng.pick([[rng.int(1, 40)], [rng.int(1, 5), rng.int(1, 5)], [1, rng.int(1, 4), rng.int(1, 4), rng.int(1, 4)]]);
}

function unaryFuzz(name: string, op: unknown): Generator {
  return (rng) => {
    const shape = elementwiseShape(rng);
    const x = T(shape);
    const size = x.size;
    switch (rng.int(0, 4)) {
      case 0: {
        const bad = badTensor(rng, size, shape);
        return { fn: name, what: `x is ${bad.what}`, thunk: call(op, bad.value) };
      }
      case 1:
        return { fn: name, what: 'options not an object', thunk: call(op, x, rng.pick(BAD_OPTIONS)) };
      case 2:
        return { fn: name, what: 'an unknown option', thunk: call(op, x, { [rng.pick(['output', 'inplace', 'outs'])]: x }) };
      case 3:
        return { fn: name, what: 'out of another shape', thunk: call(op, x, { out: T([...shape, 2]) }) };
      default: {
        const bad = badTensor(rng, size, shape);
        if (bad.value === undefined) return { fn: name, what: 'out is null', thunk: call(op, x, { out: null }) };
        return { fn: name, what: `out is ${bad.what}`, thunk: call(op, x, { out: bad.value }) };
      }
    }
  };
}

const absTanhBackwardFuzz: Generator = (rng) => {
  const shape = elementwiseShape(rng);
  const [dy, x, y] = [T(shape), T(shape), T(shape)];
  const other = T([...shape, 2]);
  const fn = 'absTanhBackward';
  switch (rng.int(0, 5)) {
    case 0: {
      const bad = badTensor(rng, dy.size, shape);
      return { fn, what: `dy is ${bad.what}`, thunk: call(absTanhBackward, bad.value, x, y) };
    }
    case 1:
      return { fn, what: 'x of another shape', thunk: call(absTanhBackward, dy, other, y) };
    case 2:
      return { fn, what: 'y of another shape', thunk: call(absTanhBackward, dy, x, other) };
    case 3:
      return { fn, what: 'y missing', thunk: call(absTanhBackward, dy, x) };
    case 4:
      return { fn, what: 'out of another shape', thunk: call(absTanhBackward, dy, x, y, { out: other }) };
    default:
      return { fn, what: 'bad options', thunk: call(absTanhBackward, dy, x, y, rng.bool() ? rng.pick(BAD_OPTIONS) : { outs: dy }) };
  }
};

const sigmoidBackwardFuzz: Generator = (rng) => {
  const shape = elementwiseShape(rng);
  const [dy, y] = [T(shape), T(shape)];
  const other = T([...shape, 3]);
  const fn = 'sigmoidBackward';
  switch (rng.int(0, 4)) {
    case 0: {
      const bad = badTensor(rng, dy.size, shape);
      return { fn, what: `dy is ${bad.what}`, thunk: call(sigmoidBackward, bad.value, y) };
    }
    case 1:
      return { fn, what: 'y of another shape', thunk: call(sigmoidBackward, dy, other) };
    case 2:
      return { fn, what: 'y missing', thunk: call(sigmoidBackward, dy) };
    case 3:
      return { fn, what: 'out of another shape', thunk: call(sigmoidBackward, dy, y, { out: other }) };
    default:
      return { fn, what: 'bad options', thunk: call(sigmoidBackward, dy, y, rng.bool() ? rng.pick(BAD_OPTIONS) : { x: dy }) };
  }
};

function linearSetup(rng: Rng) {
  const n = rng.int(1, 4);
  const inF = rng.int(1, 6);
  const outF = rng.int(1, 6);
  return { n, inF, outF, x: T([n, inF]), w: T([outF, inF]), b: T([outF]), dy: T([n, outF]) };
}

const linearFuzz: Generator = (rng) => {
  const c = linearSetup(rng);
  const fn = 'linear';
  switch (rng.int(0, 8)) {
    case 0: {
      const bad = badTensor(rng, c.n * c.inF, [c.n, c.inF]);
      return { fn, what: `x is ${bad.what}`, thunk: call(linear, bad.value, c.w, c.b) };
    }
    case 1: {
      const bad = badTensor(rng, c.outF * c.inF, [c.outF, c.inF]);
      return { fn, what: `weight is ${bad.what}`, thunk: call(linear, c.x, bad.value, c.b) };
    }
    case 2:
      return { fn, what: 'x of the wrong rank', thunk: call(linear, wrongRank(rng, [c.n, c.inF], 2), c.w, c.b) };
    case 3:
      return { fn, what: 'weight with other in-features', thunk: call(linear, c.x, T([c.outF, c.inF + 1]), c.b) };
    case 4:
      return { fn, what: 'bias of the wrong length / rank', thunk: call(linear, c.x, c.w, rng.bool() ? T([c.outF + 1]) : T([1, c.outF])) };
    case 5:
      return { fn, what: 'options not an object / unknown', thunk: call(linear, c.x, c.w, c.b, rng.bool() ? rng.pick(BAD_OPTIONS) : { transpose: true }) };
    case 6:
      return { fn, what: 'out of the wrong shape', thunk: call(linear, c.x, c.w, c.b, { out: T([c.outF, c.n + 1]) }) };
    case 7: {
      // x and out in one buffer, overlapping by one element.
      const buffer = f32(c.n * c.inF + c.n * c.outF);
      const x = new Tensor(buffer.subarray(0, c.n * c.inF), [c.n, c.inF]);
      const out = new Tensor(buffer.subarray(c.n * c.inF - 1, c.n * c.inF - 1 + c.n * c.outF), [c.n, c.outF]);
      return { fn, what: 'out sharing memory with x', thunk: call(linear, x, c.w, null, { out }) };
    }
    default:
      return { fn, what: 'weight missing', thunk: call(linear, c.x) };
  }
};

const linearBackwardInputFuzz: Generator = (rng) => {
  const c = linearSetup(rng);
  const fn = 'linearBackwardInput';
  switch (rng.int(0, 4)) {
    case 0: {
      const bad = badTensor(rng, c.n * c.outF, [c.n, c.outF]);
      return { fn, what: `dy is ${bad.what}`, thunk: call(linearBackwardInput, bad.value, c.w) };
    }
    case 1:
      return { fn, what: 'weight with other out-features', thunk: call(linearBackwardInput, c.dy, T([c.outF + 1, c.inF])) };
    case 2:
      return { fn, what: 'weight of the wrong rank', thunk: call(linearBackwardInput, c.dy, wrongRank(rng, [c.outF, c.inF], 2)) };
    case 3:
      return { fn, what: 'out of the wrong shape', thunk: call(linearBackwardInput, c.dy, c.w, { out: T([c.n, c.inF + 1]) }) };
    default:
      return { fn, what: 'bad options', thunk: call(linearBackwardInput, c.dy, c.w, rng.bool() ? rng.pick(BAD_OPTIONS) : { bias: true }) };
  }
};

const linearBackwardWeightFuzz: Generator = (rng) => {
  const c = linearSetup(rng);
  const fn = 'linearBackwardWeight';
  switch (rng.int(0, 5)) {
    case 0: {
      const bad = badTensor(rng, c.n * c.inF, [c.n, c.inF]);
      return { fn, what: `x is ${bad.what}`, thunk: call(linearBackwardWeight, bad.value, c.dy) };
    }
    case 1:
      return { fn, what: 'dy with another batch', thunk: call(linearBackwardWeight, c.x, T([c.n + 1, c.outF])) };
    case 2:
      return { fn, what: 'a non-boolean bias option', thunk: call(linearBackwardWeight, c.x, c.dy, { bias: rng.pick([1, 'no', null]) }) };
    case 3:
      return { fn, what: 'out.weight of the wrong shape', thunk: call(linearBackwardWeight, c.x, c.dy, { out: { weight: T([c.inF, c.outF + 1]) } }) };
    case 4:
      return { fn, what: 'an unknown key in out', thunk: call(linearBackwardWeight, c.x, c.dy, { out: { weights: T([c.outF, c.inF]) } }) };
    default:
      return { fn, what: 'bad options', thunk: call(linearBackwardWeight, c.x, c.dy, rng.bool() ? rng.pick(BAD_OPTIONS) : { kernelSize: 1 }) };
  }
};

const supported = capabilities().isas;
const unsupported = ALL_ISAS.filter((isa) => !supported.includes(isa));
const BAD_ISAS: unknown[] = ['bogus', '', 'AVX2', 'serial ', 'avx', 'sse', 'cuda', null, undefined, 5, {}, ['serial'], true];

const runtimeFuzz: Generator = (rng) => {
  switch (rng.int(0, 8)) {
    case 0:
      return { fn: 'setIsa', what: 'an unknown ISA', thunk: call(setIsa, rng.pick(BAD_ISAS)) };
    case 1:
      if (unsupported.length > 0) return { fn: 'setIsa', what: 'an unsupported ISA', thunk: call(setIsa, rng.pick(unsupported)) };
      return { fn: 'setIsa', what: 'no ISA', thunk: call(setIsa) };
    case 2:
      return { fn: 'setThreads', what: 'a bad thread count', thunk: call(setThreads, rng.pick([...BAD_POSITIVE, 257, 1000, undefined])) };
    case 3:
      return { fn: 'measureFmaPeak', what: 'an unknown ISA', thunk: call(measureFmaPeak, rng.pick(BAD_ISAS), 1, 0.01) };
    case 4:
      return { fn: 'measureFmaPeak', what: 'a bad thread count', thunk: call(measureFmaPeak, 'serial', rng.pick([...BAD_POSITIVE, 257, undefined]), 0.01) };
    case 5:
      return { fn: 'measureFmaPeak', what: 'bad seconds', thunk: call(measureFmaPeak, 'serial', 1, rng.pick([0, -1, NaN, Infinity, 61, 1e9, '0.1', null, -0])) };
    case 6: {
      const data = rng.pick<unknown>([new Float64Array(6), new Int32Array(6), [1, 2, 3, 4, 5, 6], null, undefined, 'abc', new Float32Array(5), new Float32Array(7), new ArrayBuffer(24)]);
      return { fn: 'new Tensor', what: 'bad data', thunk: () => new (Tensor as unknown as new (...a: unknown[]) => unknown)(data, [2, 3]) };
    }
    case 7: {
      const shape = rng.pick<unknown>([[], [0], [-1], [2, 0], [1.5], [NaN], [Infinity], ['6'], null, undefined, 'abc', 6, { length: 1, 0: 6 }, [6, 1, 1, 2 ** 31], holey([6, 6])]);
      return { fn: 'new Tensor', what: 'a bad shape', thunk: () => new (Tensor as unknown as new (...a: unknown[]) => unknown)(new Float32Array(6), shape) };
    }
    default: {
      const shape = rng.pick<unknown>([[], [0], [-1], [3, -2], [1.5], [NaN], [Infinity], 'abc', null, undefined, 7, [2 ** 31], [65536, 65536], [2 ** 26, 2 ** 6], [2 ** 53], ['4'], holey([3, 4])]);
      return { fn: 'Tensor.zeros', what: 'a bad shape', thunk: call(Tensor.zeros, shape) };
    }
  }
};

const GENERATORS: Generator[] = [
  conv2dFuzz,
  conv2dBackwardInputFuzz,
  conv2dBackwardWeightFuzz,
  maxPool2dFuzz,
  maxPool2dBackwardFuzz,
  unaryFuzz('absTanh', absTanh),
  absTanhBackwardFuzz,
  unaryFuzz('sigmoid', sigmoid),
  sigmoidBackwardFuzz,
  linearFuzz,
  linearBackwardInputFuzz,
  linearBackwardWeightFuzz,
  runtimeFuzz,
];

/** A valid conv call and its check against the reference: the library still works. */
function validCallStillWorks(label: string): void {
  const rng = new Rng(17);
  const g = convGeometry(2, 3, 7, 6, 5, [3, 3], [1, 1], [1, 1]);
  const x = randomFloat32(rng, 2 * 3 * 7 * 6);
  const w = randomFloat32(rng, 5 * 3 * 9);
  const ref = conv2dForwardRef(x, w, null, g);
  const y = conv2d(new Tensor(x, [2, 3, 7, 6]), new Tensor(w, [5, 3, 3, 3]), null, { padding: 1 });
  assertClose(y.data, ref.value, sumTolerance(ref), `${label}: a valid conv2d after the invalid calls`);
}

test(`fuzz: ${FUZZ_CALLS} random invalid calls all throw a DclError with a proper code and message (seed ${FUZZ_SEED})`, () => {
  const rng = new Rng(FUZZ_SEED);
  const isaBefore = capabilities().isa;
  const threadsBefore = capabilities().threads;
  const failures = new Map<string, { count: number; example: string }>();
  const perFunction = new Map<string, number>();
  for (let i = 0; i < FUZZ_CALLS; i++) {
    const generator = GENERATORS[i % GENERATORS.length];
    const invalid = generator(rng);
    perFunction.set(invalid.fn, (perFunction.get(invalid.fn) ?? 0) + 1);
    const r = outcome(invalid.thunk);
    const v = violation(r.error, 'error' in r);
    if (v) {
      const key = `${invalid.fn}: ${invalid.what}`;
      const entry = failures.get(key) ?? { count: 0, example: `call #${i}: ${v}` };
      entry.count++;
      failures.set(key, entry);
    }
  }
  // Nothing the invalid calls did may have changed the runtime state.
  assert.is(capabilities().isa, isaBefore, 'the active ISA after the fuzz');
  assert.is(capabilities().threads, threadsBefore, 'the thread count after the fuzz');
  validCallStillWorks('fuzz');
  for (const fn of ['conv2d', 'conv2dBackwardInput', 'conv2dBackwardWeight', 'maxPool2d', 'maxPool2dBackward', 'absTanh', 'absTanhBackward', 'sigmoid', 'sigmoidBackward', 'linear', 'linearBackwardInput', 'linearBackwardWeight'])
    assert.ok((perFunction.get(fn) ?? 0) >= 50, `${fn} got only ${perFunction.get(fn) ?? 0} invalid calls`);
  if (failures.size > 0) {
    const lines = [...failures.entries()].map(([key, { count, example }]) => `${key} (x${count}) -- ${example}`);
    assert.unreachable(`${lines.length} kinds of invalid call broke the error contract (reproduce with DCL_FUZZ_SEED=${FUZZ_SEED}):\n    ${lines.join('\n    ')}`);
  }
});

// ---------------------------------------------------------------------------------------------
// Targeted: the message names the argument at fault

test('a wrong data length names x.data and the expected length', () => {
  const e = expectDclError(() => absTanh({ data: new Float32Array(3), shape: [4] } as unknown as Tensor), 'E_SHAPE', /x\.data/, 'absTanh');
  assert.match(e.message, /length 4/);
  assert.match(e.message, /received Float32Array of length 3/);
});

test('wrong typed-array types are E_ARG naming the argument and Float32Array', () => {
  const e = expectDclError(call(sigmoid, { data: new Float64Array(4), shape: [4] }), 'E_ARG', /x\.data/, 'sigmoid Float64Array');
  assert.match(e.message, /Float32Array/);
  assert.match(e.message, /Float64Array/);
  expectDclError(call(linear, T([2, 3]), { data: new Int32Array(6), shape: [2, 3] }), 'E_ARG', /weight\.data/, 'linear Int32Array weight');
  expectDclError(() => new Tensor(new Float64Array(4) as unknown as Float32Array, [4]), 'E_ARG', /Float32Array/, 'new Tensor(Float64Array)');
  expectDclError(call(maxPool2dBackward, T([1, 1, 2, 2]), new Float32Array(4), [1, 1, 4, 4], { kernelSize: 2 }), 'E_ARG', /for argmax/, 'argmax as Float32Array');
});

test('conv2d: channel mismatch, padding >= kernel, a bad stride, an unknown option, a small input', () => {
  const x = T([1, 3, 5, 5]);
  expectDclError(call(conv2d, x, T([4, 2, 3, 3])), 'E_SHAPE', /weight\.shape\[1\].*\(3\)/, 'channel mismatch');
  expectDclError(call(conv2d, x, T([4, 3, 3, 3]), null, { padding: 3 }), 'E_ARG', /for options\.padding/, 'padding = kernel');
  expectDclError(call(conv2d, x, T([4, 3, 3, 3]), null, { padding: [0, 5] }), 'E_ARG', /for options\.padding/, 'padding > kernel');
  expectDclError(call(conv2d, x, T([4, 3, 3, 3]), null, { stride: 0 }), 'E_ARG', /for options\.stride but received 0/, 'stride 0');
  expectDclError(call(conv2d, x, T([4, 3, 3, 3]), null, { stride: [1, 1.5] }), 'E_ARG', /for options\.stride\[1\] but received 1\.5/, 'stride [1, 1.5]');
  expectDclError(call(conv2d, x, T([4, 3, 3, 3]), null, { strides: 2 }), 'E_ARG', /'strides'/, 'unknown option');
  expectDclError(call(conv2d, x, T([4, 3, 7, 7])), 'E_SHAPE', /for x /, 'input smaller than the kernel');
  expectDclError(call(conv2d, x, T([4, 3, 3, 3]), T([5])), 'E_SHAPE', /for bias/, 'bias length');
  expectDclError(call(conv2d, T([3, 5, 5]), T([4, 3, 3, 3])), 'E_SHAPE', /rank 4 for x /, 'x rank 3');
  expectDclError(call(conv2dBackwardWeight, x, T([1, 4, 3, 3])), 'E_ARG', /kernelSize/, 'conv2dBackwardWeight without options');
});

test('outputs that share memory with an input are refused, naming options.out', () => {
  const buffer = new Float32Array(64);
  const x = new Tensor(buffer.subarray(0, 16), [1, 1, 4, 4]);
  const w = T([1, 1, 3, 3]);
  expectDclError(call(conv2d, x, w, null, { out: new Tensor(buffer.subarray(12, 16), [1, 1, 2, 2]) }), 'E_ARG', /options\.out/, 'conv2d out over x');
  const lx = new Tensor(buffer.subarray(0, 12), [3, 4]);
  expectDclError(call(linear, lx, T([2, 4]), null, { out: new Tensor(buffer.subarray(6, 12), [3, 2]) }), 'E_ARG', /options\.out/, 'linear out over x');
});

test('pooling: a window larger than the input names x; an argmax outside the plane names argmax', () => {
  expectDclError(call(maxPool2d, T([1, 2, 2, 5]), { kernelSize: 3 }), 'E_SHAPE', /for x /, 'window larger than the input');
  expectDclError(call(maxPool2dBackward, T([1, 1, 2, 2]), new Int32Array(3), [1, 1, 4, 4], { kernelSize: 2 }), 'E_ARG', /for argmax/, 'argmax length');
  const argmax = new Int32Array([0, 1, 16, 2]);
  expectDclError(call(maxPool2dBackward, T([1, 1, 2, 2]), argmax, [1, 1, 4, 4], { kernelSize: 2 }), 'E_ARG', /for argmax/, 'argmax value 16 in a 16-element plane');
});

test('runtime: setIsa, setThreads and measureFmaPeak name their argument', () => {
  expectDclError(call(setIsa, 'bogus'), 'E_ARG', /for isa but received "bogus"/, "setIsa('bogus')");
  expectDclError(call(setThreads, 0), 'E_ARG', /for threads but received 0/, 'setThreads(0)');
  expectDclError(call(setThreads, 257), 'E_ARG', /for threads/, 'setThreads(257)');
  expectDclError(call(measureFmaPeak, 'serial', 1, 0), 'E_ARG', /for seconds/, 'measureFmaPeak seconds 0');
  expectDclError(call(measureFmaPeak, 'serial', 0, 0.01), 'E_ARG', /for threads/, 'measureFmaPeak threads 0');
  for (const isa of unsupported) expectDclError(call(setIsa, isa), 'E_ISA', /for isa/, `setIsa('${isa}') on a CPU without it`);
  expectDclError(call(Tensor.zeros, [65536, 65536]), 'E_SHAPE', /at most 2147483647 elements/, 'Tensor.zeros past 2^31 elements');
});

test('shapes with holes (sparse arrays such as [, 4]) are rejected: Tensor.zeros, new Tensor, inputShape', () => {
  // forEach / map / every skip the hole of a sparse array, so checks written with them pass it.
  expectDclError(call(Tensor.zeros, holey([3, 4])), 'E_ARG', /for shape\[0\]/, 'Tensor.zeros([, 4])');
  expectDclError(() => new Tensor(new Float32Array(4), holey([3, 4])), 'E_ARG', /for tensor shape\[0\]/, 'new Tensor(data, [, 4])');
  expectDclError(call(conv2dBackwardInput, T([1, 1, 2, 2]), T([1, 1, 3, 3]), holey([1, 1, 4, 4])), 'E_ARG', /for inputShape\[0\]/, 'conv2dBackwardInput with inputShape [, 1, 4, 4]');
});

test('tensors whose shape has a hole are rejected by every op, for every tensor argument and out (in a child process: an unchecked one writes out of bounds)', () => {
  const child = spawnSync(process.execPath, [fileURLToPath(new URL('./sparse-shape-child.js', import.meta.url))], {
    env: { ...process.env, DCL_ISA: '', DCL_THREADS: '' },
    encoding: 'utf8',
    timeout: 60_000,
  });
  const results = child.stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { name: string; threw: boolean; isDclError?: boolean; code?: string; message?: string });
  const problems: string[] = [];
  for (const r of results) {
    if (!r.threw) problems.push(`${r.name}: did not throw`);
    else if (!r.isDclError) problems.push(`${r.name}: threw a non-DclError: ${r.message}`);
    else if (!CODES.has(r.code ?? '') || !MESSAGE.test(r.message ?? '') || /native code/.test(r.message ?? '')) problems.push(`${r.name}: ${r.code} ${r.message}`);
  }
  if (child.status !== 0)
    problems.push(
      `the child process died (status ${child.status}, signal ${child.signal}) after ${results.length} calls, ` +
        `the last one '${results[results.length - 1]?.name}' or the next: ${child.stderr.trim().split('\n').slice(-3).join(' | ')}`,
    );
  else if (results.length < 37) problems.push(`only ${results.length} of 37 results came back: ${child.stderr}`);
  if (problems.length > 0) assert.unreachable(`${problems.length} calls with a holey shape broke the contract:\n    ${problems.join('\n    ')}`);
});

test('a failed call leaves its out buffer untouched (validation happens before any write)', () => {
  const out = new Tensor(new Float32Array(4 * 9).fill(7), [1, 4, 3, 3]);
  const r = outcome(call(conv2d, T([1, 3, 5, 5]), T([4, 3, 3, 3]), T([5]), { out }));
  assert.ok(r.error instanceof DclError);
  assert.ok(out.data.every((v) => v === 7), 'out was written by a call that failed validation');
});

// ---------------------------------------------------------------------------------------------
// DCL_ISA / DCL_THREADS, read once at import: checked in child processes

const indexUrl = new URL('../lib/index.js', import.meta.url).href;
const errorsUrl = new URL('../lib/errors.js', import.meta.url).href;

interface ChildResult {
  ok: boolean;
  isDclError?: boolean;
  code?: string;
  message?: string;
  isa?: string;
  threads?: number;
}

/** Imports the package in a fresh node with `env` added; reports what import did. */
function importWith(env: Record<string, string>): ChildResult {
  const script = `
    try {
      const m = await import(${JSON.stringify(indexUrl)});
      const c = m.capabilities();
      console.log(JSON.stringify({ ok: true, isa: c.isa, threads: c.threads }));
    } catch (e) {
      const { DclError } = await import(${JSON.stringify(errorsUrl)});
      console.log(JSON.stringify({ ok: false, isDclError: e instanceof DclError, code: e.code, message: e.message }));
    }`;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...process.env, DCL_ISA: '', DCL_THREADS: '', ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.is(child.status, 0, `child node exited with ${child.status} (signal ${child.signal}): ${child.stderr}`);
  const line = child.stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(line) as ChildResult;
}

test('DCL_ISA=bogus makes the import fail with DclError E_ARG naming DCL_ISA', () => {
  const r = importWith({ DCL_ISA: 'bogus' });
  assert.is(r.ok, false, 'import succeeded with DCL_ISA=bogus');
  assert.ok(r.isDclError, `not a DclError: ${r.message}`);
  assert.is(r.code, 'E_ARG');
  assert.match(r.message ?? '', MESSAGE);
  assert.match(r.message ?? '', /DCL_ISA/);
  assert.match(r.message ?? '', /bogus/);
});

for (const isa of unsupported) {
  test(`DCL_ISA=${isa} on a CPU without it makes the import fail with E_ISA`, () => {
    const r = importWith({ DCL_ISA: isa });
    assert.is(r.ok, false);
    assert.ok(r.isDclError, `not a DclError: ${r.message}`);
    assert.is(r.code, 'E_ISA');
    assert.match(r.message ?? '', /DCL_ISA/);
    assert.match(r.message ?? '', new RegExp(isa));
  });
}

test('DCL_ISA=<each supported ISA> selects it at import', () => {
  for (const isa of supported) {
    const r = importWith({ DCL_ISA: isa });
    assert.ok(r.ok, `import failed with DCL_ISA=${isa}: ${r.message}`);
    assert.is(r.isa, isa);
  }
});

test('DCL_THREADS: 1 and 3 are applied; 0, 257, 1.5, abc fail with E_ARG naming DCL_THREADS', () => {
  for (const n of [1, 3]) {
    const r = importWith({ DCL_THREADS: String(n) });
    assert.ok(r.ok, `import failed with DCL_THREADS=${n}: ${r.message}`);
    assert.is(r.threads, n);
  }
  for (const bad of ['0', '257', '1.5', 'abc', '-2']) {
    const r = importWith({ DCL_THREADS: bad });
    assert.is(r.ok, false, `import succeeded with DCL_THREADS=${bad}`);
    assert.ok(r.isDclError);
    assert.is(r.code, 'E_ARG');
    assert.match(r.message ?? '', /for DCL_THREADS/);
  }
});

test.run();
