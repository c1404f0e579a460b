// maxPool2d forward and backward on every ISA path. Max-pooling does no arithmetic, so every
// comparison here is EXACT: output values (bit for bit, -0 and +0 distinguished, NaN for NaN),
// argmax indices, and gradients (dy is made of small multiples of 1/4, whose sums of a few terms
// are exact in float32 in any order, so overlapping windows add up exactly too).
//
// The argmax rule (native/include/dcl/kernels.h) is what a SIMD max easily gets wrong: start from
// -inf with the window's first element as the winner, walk the window row by row, take an element
// only when it is strictly greater. So ties keep the first maximum, NaN never takes over (an
// all-NaN window, or NaN followed only by -inf, keeps its first element), and -0 vs +0 is a tie.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { maxPool2d, maxPool2dBackward, Tensor } from '../lib/index.js';
import {
  checkGradient,
  maxPool2dBackwardRef,
  maxPool2dForwardRef,
  poolGeometry,
  randomFloat32,
  randomIntegers32,
  Rng,
  toFloat64,
  type Pair,
  type PoolGeometry,
} from './reference.js';
import { assertClose, assertSame, assertUnchanged, clone, embed, forEachIsa, guardedOutput, nchw } from './helpers.js';

const test = suite('maxPool2d');

interface PoolCase {
  n: number;
  c: number;
  h: number;
  w: number;
  k: Pair;
  s: Pair | null; // null: the default (stride = kernel)
}

type Fill = 'continuous' | 'ties' | 'special' | 'constant';

const p = (n: number, c: number, h: number, w: number, k: number | Pair, s: number | Pair | null): PoolCase => ({
  n,
  c,
  h,
  w,
  k: typeof k === 'number' ? [k, k] : k,
  s: s === null ? null : typeof s === 'number' ? [s, s] : s,
});

const form = ([a, b]: Pair): number | Pair => (a === b ? a : [a, b]);

function describeCase(pc: PoolCase): string {
  return `x[${pc.n},${pc.c},${pc.h},${pc.w}] window ${pc.k[0]}x${pc.k[1]} stride ${pc.s ? `${pc.s[0]}x${pc.s[1]}` : 'default'}`;
}

function geometry(pc: PoolCase): PoolGeometry {
  return poolGeometry(pc.n, pc.c, pc.h, pc.w, pc.k, pc.s ?? pc.k);
}

function options(pc: PoolCase) {
  return pc.s ? { kernelSize: form(pc.k), stride: form(pc.s) } : { kernelSize: form(pc.k) };
}

/** Input values: continuous, many ties (4 levels), ties plus NaN / -inf / +inf / -0, or one constant. */
function makeInput(rng: Rng, length: number, fill: Fill): Float32Array {
  const x = new Float32Array(length);
  for (let i = 0; i < length; i++) {
    switch (fill) {
      case 'continuous':
        x[i] = rng.normal();
        break;
      case 'ties':
        x[i] = rng.int(-1, 2);
        break;
      case 'special': {
        const r = rng.float();
        x[i] = r < 0.15 ? Number.NaN : r < 0.25 ? -Infinity : r < 0.28 ? Infinity : r < 0.34 ? -0 : r < 0.4 ? 0 : rng.int(-2, 1);
        break;
      }
      case 'constant':
        x[i] = -3.5;
        break;
    }
  }
  return x;
}

function checkCase(pc: PoolCase, seed: number, fill: Fill, unaligned: boolean): void {
  const rng = new Rng(seed);
  const g = geometry(pc);
  const xShape = [g.n, g.c, g.h, g.w];
  const yShape = [g.n, g.c, g.oh, g.ow];
  const x = makeInput(rng, g.n * g.c * g.h * g.w, fill);
  const dy = randomIntegers32(rng, g.n * g.c * g.oh * g.ow, -16, 16, 0.25);
  const ref = maxPool2dForwardRef(x, g);
  const refDx = maxPool2dBackwardRef(dy, ref.argmax, g);
  // +Infinity around an unaligned input: an out-of-window read would win and change the result.
  const X = new Tensor(unaligned ? embed(x, 1 + (seed % 15), Infinity) : clone(x), xShape);
  const DY = new Tensor(unaligned ? embed(dy, 2 + (seed % 13), Infinity) : clone(dy), yShape);
  const label = `${describeCase(pc)} (${fill} values)`;
  forEachIsa(() => {
    const { output, argmax } = maxPool2d(X, options(pc));
    assert.equal([...output.shape], yShape, `${label}: output shape`);
    assert.ok(argmax instanceof Int32Array, 'argmax is an Int32Array');
    assertSame(argmax, ref.argmax, `maxPool2d argmax ${label}`, nchw(yShape));
    assertSame(output.data, ref.value, `maxPool2d values ${label}`, nchw(yShape));
    const dx = maxPool2dBackward(DY, argmax, xShape, options(pc));
    assert.equal([...dx.shape], xShape, `${label}: dx shape`);
    assertSame(dx.data, refDx, `maxPool2dBackward ${label}`, nchw(xShape));
  });
  assertUnchanged(x, X.data, `${label}: x`);
  assertUnchanged(dy, DY.data, `${label}: dy`);
}

// ---------------------------------------------------------------------------------------------

const CASES: PoolCase[] = [
  p(1, 1, 1, 1, 1, null), // 1x1 image, 1x1 window
  p(3, 3, 5, 5, 1, 2), // window 1, stride 2: a strided copy
  p(2, 32, 30, 30, 2, null), // DCL-S pool after conv1 (60x60 -> 30x30 at half size)
  p(1, 64, 14, 14, 2, null),
  p(3, 17, 32, 32, [3, 2], [1, 2]), // overlapping rows
  p(1, 16, 13, 13, 3, 2), // overlapping, odd size
  p(1, 7, 32, 33, 3, 1), // stride 1: every element in up to 9 windows
  p(3, 33, 5, 7, [5, 7], null), // one window per plane (global max)
  p(1, 64, 7, 13, [1, 4], [3, 1]),
  p(1, 1, 32, 32, 4, 3),
  p(3, 7, 13, 5, [2, 3], [3, 2]), // stride > window: gaps never read
  p(1, 3, 1, 13, [1, 3], [1, 2]), // a single row
  p(1, 3, 13, 1, [2, 1], 1), // a single column
  p(1, 16, 32, 32, 2, 1),
];
const FILLS: Fill[] = ['continuous', 'ties', 'special', 'constant'];

CASES.forEach((pc, i) => {
  test(`forward and backward exact vs reference: ${describeCase(pc)}`, () => {
    for (const [j, fill] of FILLS.entries()) checkCase(pc, 100 * i + j, fill, (i + j) % 2 === 1);
  });
});

const CHANNELS = [1, 3, 7, 16, 17, 33, 64];
const SIZES = [1, 5, 7, 13, 32];
const shapeRng = new Rng(31337);
for (let i = 0; i < 30; i++) {
  let pc: PoolCase;
  do {
    const kh = shapeRng.int(1, 4);
    const kw = shapeRng.bool(0.5) ? kh : shapeRng.int(1, 4);
    pc = p(
      shapeRng.pick([1, 1, 3]),
      shapeRng.pick(CHANNELS),
      shapeRng.pick(SIZES),
      shapeRng.pick(SIZES),
      [kh, kw],
      shapeRng.bool(0.25) ? null : [shapeRng.int(1, 3), shapeRng.int(1, 3)],
    );
  } while (pc.h < pc.k[0] || pc.w < pc.k[1]);
  const fill = FILLS[i % FILLS.length];
  test(`random shape #${i}: ${describeCase(pc)} (${fill})`, () => checkCase(pc, 7000 + i, fill, i % 3 === 0));
}

// ---------------------------------------------------------------------------------------------
// The tie / NaN / infinity rule, window by window

/** Four-element windows, listed in window order (row by row), and the index in the window that must win. */
const WINDOWS: { name: string; values: number[]; winner: number }[] = [
  { name: 'all NaN', values: [NaN, NaN, NaN, NaN], winner: 0 },
  { name: 'NaN first, then numbers', values: [NaN, 1, 3, 2], winner: 2 },
  { name: 'numbers, then NaN', values: [1, 5, NaN, 2], winner: 1 },
  { name: 'all -inf', values: [-Infinity, -Infinity, -Infinity, -Infinity], winner: 0 },
  { name: 'NaN then -inf', values: [NaN, -Infinity, -Infinity, -Infinity], winner: 0 },
  { name: '-inf then NaN', values: [-Infinity, NaN, NaN, NaN], winner: 0 },
  { name: '-inf then a number', values: [-Infinity, -Infinity, NaN, -1e30], winner: 3 },
  { name: 'ties: first maximum wins', values: [2, 7, 7, 7], winner: 1 },
  { name: 'ties on the second row', values: [1, 0, 4, 4], winner: 2 },
  { name: 'all equal', values: [3, 3, 3, 3], winner: 0 },
  { name: '-0 before +0 (a tie)', values: [-0, 0, -1, -2], winner: 0 },
  { name: '+0 before -0 (a tie)', values: [-5, 0, -0, -0], winner: 1 },
  { name: '+inf wins', values: [1, NaN, Infinity, Infinity], winner: 2 },
  { name: 'largest finite float32', values: [3.4028234663852886e38, -Infinity, 1, 3.4028234663852886e38], winner: 0 },
  { name: 'denormals', values: [1e-45, 3e-45, -1e-45, 2e-45], winner: 1 },
  { name: 'last element', values: [-4, -3, -2, -1], winner: 3 },
];

test('ties, NaN, -inf, +inf, -0 and denormals follow the kernels.h rule in every lane position', () => {
  // Windows laid out left to right, `across` per row, in a different order per rotation so that
  // each pattern lands in the vector body and in the tails. Four geometries: 2x2 / stride 2 (the
  // DCL-S case, often specialised), 2x2 / stride 3, 1x4 / stride 5 and 4x1 / stride 4 (generic
  // paths). A window's values go in row-major order; the gaps between windows (stride > window)
  // hold +Infinity, which would win if a kernel read outside its windows.
  const GEOMETRIES: { k: Pair; s: Pair }[] = [
    { k: [2, 2], s: [2, 2] },
    { k: [2, 2], s: [3, 3] },
    { k: [1, 4], s: [1, 5] },
    { k: [4, 1], s: [4, 1] },
  ];
  for (const { k, s } of GEOMETRIES) {
    for (const across of [1, 3, 8, 9, 16, 17]) {
      for (let rotation = 0; rotation < 3; rotation++) {
        const rows = Math.ceil(WINDOWS.length / across) + 1;
        const h = s[0] * (rows - 1) + k[0];
        const w = s[1] * (across - 1) + k[1];
        const x = new Float32Array(h * w).fill(Infinity);
        const placed: { index: number; window: (typeof WINDOWS)[number]; winnerAt: number }[] = [];
        for (let q = 0; q < rows * across; q++) {
          const window = WINDOWS[(q + rotation * 5) % WINDOWS.length];
          const oy = Math.floor(q / across);
          const ox = q % across;
          const at = (j: number) => (oy * s[0] + Math.floor(j / k[1])) * w + ox * s[1] + (j % k[1]);
          window.values.forEach((v, j) => (x[at(j)] = v));
          placed.push({ index: q, window, winnerAt: at(window.winner) });
        }
        const g = poolGeometry(1, 1, h, w, k, s);
        assert.is(g.oh * g.ow, rows * across);
        const ref = maxPool2dForwardRef(x, g);
        // The reference itself follows the table (so a wrong reference cannot hide a wrong kernel).
        for (const { index, window, winnerAt } of placed) assert.is(ref.argmax[index], winnerAt, `reference argmax for '${window.name}'`);
        forEachIsa(() => {
          const { output, argmax } = maxPool2d(new Tensor(clone(x), [1, 1, h, w]), { kernelSize: form(k), stride: form(s) });
          for (const { index, window } of placed) {
            const label = `'${window.name}' at window ${index} (window ${k[0]}x${k[1]}, stride ${s[0]}x${s[1]}, ${across} per row)`;
            assert.is(argmax[index], ref.argmax[index], `argmax of ${label}`);
            const want = window.values[window.winner];
            const got = output.data[index];
            assert.ok(
              Object.is(got, Math.fround(want)) || (Number.isNaN(want) && Number.isNaN(got)),
              `value of ${label}: got ${Object.is(got, -0) ? '-0' : got}, want ${Object.is(want, -0) ? '-0' : want}`,
            );
          }
        });
      }
    }
  }
});

// ---------------------------------------------------------------------------------------------
// Backward

test('backward scatter-adds overlapping windows exactly, including many windows on one element', () => {
  const rng = new Rng(11);
  const cases = [p(2, 17, 13, 13, 3, 1), p(1, 33, 9, 32, [3, 4], [1, 2]), p(3, 3, 7, 7, 5, 1)];
  for (const pc of cases) {
    const g = geometry(pc);
    const xShape = [g.n, g.c, g.h, g.w];
    const size = g.n * g.c * g.oh * g.ow;
    const dy = randomIntegers32(rng, size, -16, 16, 0.25);
    // The kernel scatters whatever argmax says (lib checks only that it lies in the plane).
    for (const [name, argmaxOf] of [
      ['hand-made argmax: every window of a plane points at one element', () => 0],
      ['hand-made argmax: random elements of the plane', () => rng.int(0, g.h * g.w - 1)],
    ] as const) {
      const argmax = new Int32Array(size);
      for (let i = 0; i < size; i++) argmax[i] = argmaxOf();
      const want = maxPool2dBackwardRef(dy, argmax, g);
      forEachIsa(() => {
        const dx = maxPool2dBackward(new Tensor(dy, [g.n, g.c, g.oh, g.ow]), argmax, xShape, options(pc));
        assertSame(dx.data, want, `${name}, ${describeCase(pc)}`, nchw(xShape));
      });
    }
  }
});

test('backward with float dy matches the float64 scatter to float32 rounding', () => {
  const pc = p(3, 16, 32, 32, 3, 1); // up to 9 windows per element
  const rng = new Rng(12);
  const g = geometry(pc);
  const x = makeInput(rng, g.n * g.c * g.h * g.w, 'continuous');
  const dy = randomFloat32(rng, g.n * g.c * g.oh * g.ow);
  const ref = maxPool2dForwardRef(x, g);
  const want = maxPool2dBackwardRef(dy, ref.argmax, g);
  // At most 9 terms of magnitude <= 1: 9 roundings of at most u * 9 each, and the final one.
  const TOL = 9 * 9 * 2 ** -24;
  forEachIsa(() => {
    const { argmax } = maxPool2d(new Tensor(x, [g.n, g.c, g.h, g.w]), options(pc));
    const dx = maxPool2dBackward(new Tensor(dy, [g.n, g.c, g.oh, g.ow]), argmax, [g.n, g.c, g.h, g.w], options(pc));
    assertClose(dx.data, want, () => TOL, `maxPool2dBackward ${describeCase(pc)}`, nchw([g.n, g.c, g.h, g.w]));
  });
});

test('gradient vs central finite differences (distinct values, so a small step keeps every winner)', () => {
  const cases = [p(2, 3, 7, 9, 3, 2), p(1, 5, 8, 8, 2, null), p(1, 2, 13, 6, [3, 2], [1, 1])];
  cases.forEach((pc, k) => {
    const rng = new Rng(300 + k);
    const g = geometry(pc);
    const size = g.n * g.c * g.h * g.w;
    // Values at least 1e-2 apart: a step of 1e-4 cannot change any window's winner, so L is linear
    // around the point and the central difference is exact up to float64 rounding.
    const x = Float32Array.from(rng.permutation(size), (v) => (v - size / 2) * 1e-2);
    const R = randomFloat32(rng, g.n * g.c * g.oh * g.ow);
    const x64 = toFloat64(x);
    const indices = rng.sample(size, 40);
    forEachIsa(() => {
      const { argmax } = maxPool2d(new Tensor(x, [g.n, g.c, g.h, g.w]), options(pc));
      const dx = maxPool2dBackward(new Tensor(R, [g.n, g.c, g.oh, g.ow]), argmax, [g.n, g.c, g.h, g.w], options(pc));
      checkGradient({
        label: `dL/dx ${describeCase(pc)}`,
        point: x64,
        forward: (pt) => maxPool2dForwardRef(pt, g).value,
        R,
        analytic: dx.data,
        indices,
        h: 1e-4,
        rtol: 1e-6, // float32 sums of at most 9 terms vs the exact float64 difference
        atol: 1e-6,
      });
      // Every element the windows never pick gets exactly 0.
      const picked = new Set(argmax.map((a, i) => Math.floor(i / (g.oh * g.ow)) * g.h * g.w + a));
      for (let i = 0; i < size; i++) if (!picked.has(i)) assert.is(dx.data[i], 0, `dx[${i}] of an element no window picked`);
    });
  });
});

test('out= at unaligned offsets: output, argmax and dx fully overwritten, nothing written outside', () => {
  const cases = [p(2, 17, 13, 13, 2, null), p(1, 3, 9, 33, 3, [2, 1]), p(3, 16, 8, 8, 2, null), p(1, 5, 16, 17, 2, 2)];
  cases.forEach((pc, k) => {
    const rng = new Rng(600 + k);
    const g = geometry(pc);
    const xShape = [g.n, g.c, g.h, g.w];
    const yShape = [g.n, g.c, g.oh, g.ow];
    const x = makeInput(rng, g.n * g.c * g.h * g.w, k % 2 ? 'special' : 'continuous');
    const dy = randomIntegers32(rng, g.n * g.c * g.oh * g.ow, -16, 16, 0.25);
    const ref = maxPool2dForwardRef(x, g);
    const refDx = maxPool2dBackwardRef(dy, ref.argmax, g);
    const label = describeCase(pc);
    forEachIsa(() => {
      for (const offset of [1, 7, 12]) {
        const yOut = guardedOutput(ref.value.length, offset);
        const output = new Tensor(yOut.view, yShape);
        // argmax inside a larger buffer, prefilled with -7 (not a valid index) and guarded with -9.
        const amBuffer = new Int32Array(ref.argmax.length + 2 * 40 + offset).fill(-9);
        const am = amBuffer.subarray(40 + offset, 40 + offset + ref.argmax.length).fill(-7);
        const result = maxPool2d(new Tensor(x, xShape), { ...options(pc), out: { output, argmax: am } });
        assert.is(result.output, output, 'maxPool2d returns the out tensor');
        assert.is(result.argmax, am, 'maxPool2d returns the out argmax');
        assertSame(yOut.view, ref.value, `maxPool2d into out (offset ${offset}) ${label}`, nchw(yShape));
        assertSame(am, ref.argmax, `maxPool2d argmax into out (offset ${offset}) ${label}`, nchw(yShape));
        yOut.intact(`maxPool2d (offset ${offset}) ${label}`);
        assert.ok(amBuffer.subarray(0, 40 + offset).every((v) => v === -9) && amBuffer.subarray(40 + offset + am.length).every((v) => v === -9), `maxPool2d wrote outside argmax (offset ${offset}) ${label}`);

        const dxOut = guardedOutput(refDx.length, offset);
        const dx = new Tensor(dxOut.view, xShape);
        assert.is(maxPool2dBackward(new Tensor(dy, yShape), am, xShape, { ...options(pc), out: dx }), dx, 'maxPool2dBackward returns the out tensor');
        assertSame(dxOut.view, refDx, `maxPool2dBackward into out (offset ${offset}) ${label}`, nchw(xShape));
        dxOut.intact(`maxPool2dBackward (offset ${offset}) ${label}`);
      }
    });
  });
});

test('the default stride is the window size', () => {
  const rng = new Rng(13);
  const x = new Tensor(randomFloat32(rng, 3 * 17 * 13 * 11), [3, 17, 13, 11]);
  forEachIsa(() => {
    for (const k of [2, 3, [2, 3]] as (number | Pair)[]) {
      const a = maxPool2d(x, { kernelSize: k });
      const b = maxPool2d(x, { kernelSize: k, stride: k });
      assert.equal([...a.output.shape], [...b.output.shape]);
      assertSame(a.output.data, b.output.data, `default stride, window ${k}`);
      assertSame(a.argmax, b.argmax, `default stride argmax, window ${k}`);
    }
  });
});

test.run();
