// conv2d forward, backward-input and backward-weight/bias on every ISA path, against the float64
// reference (test/reference.ts) and, on small shapes, against central finite differences.
//
// Shapes are chosen to break SIMD kernels: channel counts 1, 3, 7, 16, 17, 33, 64 (tails of 8- and
// 16-lane vectors on either side of the common sizes), output widths that are not multiples of 8 or
// 16, 1-pixel images, kernels 1..7 including non-square ones, strides 1..3, paddings 0..k-1, batch
// 1 and odd, with and without bias; plus DCL-S-like layers (3x3, padding 1, 16..256 channels) that
// an AVX-512 kernel specialises for. Odd-numbered cases place every tensor at an unaligned offset
// inside a NaN-filled buffer, so an out-of-bounds read that reaches a result shows up as NaN.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { conv2d, conv2dBackwardInput, conv2dBackwardWeight, Tensor } from '../lib/index.js';
import {
  checkGradient,
  conv2dBackwardInputRef,
  conv2dBackwardWeightRef,
  conv2dForwardRef,
  convGeometry,
  randomFloat32,
  Rng,
  toFloat64,
  type ConvGeometry,
  type Pair,
} from './reference.js';
import {
  assertClose,
  assertFails,
  assertUnchanged,
  clone,
  embed,
  forEachIsa,
  guardedOutput,
  nchw,
  sumTolerance,
} from './helpers.js';

const test = suite('conv2d');

/**
 * Finite-difference checks: conv is linear in each of x, w, b, so the central difference in
 * float64 is exact up to float64 rounding (~1e-16 |L| / h ~ 1e-12 here); what remains is the
 * float32 accumulation error of the native gradient, a few u sqrt(K) of the gradient's scale
 * (K < 200 on these shapes: < 1e-6 of it). FD_RTOL / FD_ATOL_REL (relative to the largest checked
 * gradient) sit 10x above that and far below the effect of one wrong term (>= 1e-2 of the scale).
 */
const FD_H = 1e-3;
const FD_RTOL = 1e-4;
const FD_ATOL_REL = 1e-5;
/** Coordinates checked per tensor by finite differences (each one costs two reference forwards). */
const FD_SAMPLES = 30;

interface ConvCase {
  n: number;
  cin: number;
  h: number;
  w: number;
  cout: number;
  k: Pair;
  s: Pair;
  p: Pair;
  bias: boolean;
}

const c = (n: number, cin: number, h: number, w: number, cout: number, k: number | Pair, s: number | Pair, p: number | Pair, bias: boolean): ConvCase => ({
  n,
  cin,
  h,
  w,
  cout,
  k: typeof k === 'number' ? [k, k] : k,
  s: typeof s === 'number' ? [s, s] : s,
  p: typeof p === 'number' ? [p, p] : p,
  bias,
});

function describeCase(cc: ConvCase): string {
  const pair = ([a, b]: Pair) => (a === b ? `${a}` : `${a}x${b}`);
  return `x[${cc.n},${cc.cin},${cc.h},${cc.w}] w[${cc.cout},${cc.cin},${cc.k[0]},${cc.k[1]}] stride ${pair(cc.s)} pad ${pair(cc.p)}${cc.bias ? ' +bias' : ''}`;
}

/** Options in both accepted forms: a number when square, an [h, w] pair otherwise. */
const form = ([a, b]: Pair): number | Pair => (a === b ? a : [a, b]);

function geometry(cc: ConvCase): ConvGeometry {
  return convGeometry(cc.n, cc.cin, cc.h, cc.w, cc.cout, cc.k, cc.s, cc.p);
}

/** Forward, backward-input and backward-weight/bias of one case on every ISA, against the reference. */
function checkCase(cc: ConvCase, seed: number, unaligned: boolean): void {
  const rng = new Rng(seed);
  const g = geometry(cc);
  const xShape = [g.n, g.cin, g.h, g.w];
  const yShape = [g.n, g.cout, g.oh, g.ow];
  const x = randomFloat32(rng, g.n * g.cin * g.h * g.w);
  const w = randomFloat32(rng, g.cout * g.cin * g.kh * g.kw);
  const b = cc.bias ? randomFloat32(rng, g.cout) : null;
  const dy = randomFloat32(rng, g.n * g.cout * g.oh * g.ow);
  const refY = conv2dForwardRef(x, w, b, g);
  const refDx = conv2dBackwardInputRef(dy, w, g);
  const refDw = conv2dBackwardWeightRef(x, dy, g);

  const place = (a: Float32Array) => (unaligned ? embed(a, 1 + (seed % 15)) : clone(a));
  const X = new Tensor(place(x), xShape);
  const W = new Tensor(place(w), [g.cout, g.cin, g.kh, g.kw]);
  const B = b ? new Tensor(place(b), [g.cout]) : null;
  // dy as a plain { data, shape } object: the ops accept either form.
  // (The op signatures say Tensor, but a TensorLike is accepted at run time: see lib/tensor.ts.)
  const DY = { data: place(dy), shape: yShape } as unknown as Tensor;
  const opts = { stride: form(cc.s), padding: form(cc.p) };
  const label = describeCase(cc);

  forEachIsa(() => {
    const y = conv2d(X, W, B ?? (seed % 2 ? null : undefined), opts);
    assert.equal([...y.shape], yShape, `${label}: output shape`);
    assertClose(y.data, refY.value, sumTolerance(refY), `conv2d forward ${label}`, nchw(yShape));

    const dx = conv2dBackwardInput(DY, W, xShape, opts);
    assert.equal([...dx.shape], xShape, `${label}: dx shape`);
    assertClose(dx.data, refDx.value, sumTolerance(refDx), `conv2dBackwardInput ${label}`, nchw(xShape));

    const grads = conv2dBackwardWeight(X, DY, { kernelSize: form(cc.k), ...opts, ...(cc.bias ? {} : { bias: false }) });
    assert.equal([...grads.weight.shape], [g.cout, g.cin, g.kh, g.kw], `${label}: dw shape`);
    assertClose(grads.weight.data, refDw.weight.value, sumTolerance(refDw.weight), `conv2dBackwardWeight (weight) ${label}`, nchw([g.cout, g.cin, g.kh, g.kw]));
    if (cc.bias) {
      assert.ok(grads.bias, `${label}: bias gradient missing`);
      assertClose(grads.bias.data, refDw.bias.value, sumTolerance(refDw.bias), `conv2dBackwardWeight (bias) ${label}`);
    } else {
      assert.is(grads.bias, null, `${label}: bias: false must return a null bias gradient`);
    }
  });
  assertUnchanged(x, X.data, `${label}: x`);
  assertUnchanged(w, W.data, `${label}: weight`);
  if (b && B) assertUnchanged(b, B.data, `${label}: bias`);
  assertUnchanged(dy, DY.data, `${label}: dy`);
}

// ---------------------------------------------------------------------------------------------
// Hand-picked shapes

const CASES: ConvCase[] = [
  // 1-pixel images, 1x1 kernels, a single row or column.
  c(1, 1, 1, 1, 1, 1, 1, 0, true),
  c(1, 3, 1, 1, 7, 3, 1, 1, true), // only the centre tap sees the image
  c(3, 16, 1, 1, 17, 1, 1, 0, false),
  c(2, 3, 13, 1, 5, [3, 1], 1, [1, 0], true),
  c(1, 7, 1, 13, 16, [1, 5], [1, 2], [0, 2], false),
  // Channel and width tails, strides, non-square kernels, padding up to k - 1.
  c(3, 7, 5, 5, 16, 3, 1, 1, true),
  c(1, 16, 7, 7, 17, 5, 1, 2, false),
  c(3, 17, 13, 13, 33, 3, 2, 1, true),
  c(1, 33, 13, 7, 7, [7, 3], [1, 2], [3, 1], true),
  c(1, 1, 32, 32, 64, 7, 3, 3, true),
  c(1, 64, 7, 7, 3, 2, 1, 0, false),
  c(1, 3, 13, 13, 1, 6, 2, 5, true),
  c(1, 4, 3, 3, 5, 5, 1, 2, false), // kernel larger than the image
  c(3, 5, 32, 7, 13, [4, 6], [3, 1], [0, 5], true),
  c(1, 17, 32, 33, 16, 1, 2, 0, true),
  c(1, 7, 13, 13, 33, [2, 7], [2, 3], [1, 6], false),
  // DCL-S-like layers and channel counts around 16 / 32 / 64 (3x3, padding 1 unless stated).
  c(2, 32, 32, 32, 64, 3, 1, 1, true), // DCL-S conv2 at 32x32
  c(2, 1, 32, 32, 32, 5, 1, 0, true), // DCL-S conv1 at 32x32
  c(1, 16, 16, 16, 32, 3, 1, 1, true),
  c(1, 32, 13, 13, 64, 3, 1, 1, true),
  c(1, 64, 8, 8, 128, 3, 1, 1, true), // DCL-S conv3 at 8x8
  c(1, 128, 4, 4, 256, 3, 1, 1, true), // DCL-S conv4 at 4x4
  c(1, 15, 9, 9, 31, 3, 1, 1, false),
  c(1, 17, 7, 11, 48, 3, 1, 1, true),
  c(1, 33, 6, 6, 65, 3, 1, 1, true),
  c(3, 63, 5, 5, 16, 3, 1, 1, false),
  c(1, 64, 9, 17, 63, 3, 1, 0, true),
  c(1, 31, 32, 32, 33, 3, 2, 1, true),
  c(1, 16, 33, 33, 16, 3, 1, 1, false),
];

CASES.forEach((cc, i) => {
  test(`forward and backward vs float64 reference: ${describeCase(cc)}`, () => {
    checkCase(cc, 1000 + i, i % 2 === 1);
  });
});

// ---------------------------------------------------------------------------------------------
// Seeded random shapes from the same axes (kept to a few hundred thousand multiply-adds each)

const CHANNELS = [1, 3, 7, 13, 16, 17, 31, 33, 64];
const SIZES = [1, 5, 7, 13, 32];

function randomCase(rng: Rng): ConvCase {
  for (;;) {
    const kh = rng.int(1, 7);
    const kw = rng.bool(0.6) ? kh : rng.int(1, 7);
    const cc = c(
      rng.pick([1, 1, 2, 3]),
      rng.pick(CHANNELS),
      rng.pick(SIZES),
      rng.pick(SIZES),
      rng.pick(CHANNELS),
      [kh, kw],
      rng.bool(0.6) ? rng.int(1, 3) : [rng.int(1, 3), rng.int(1, 3)],
      [rng.int(0, kh - 1), rng.int(0, kw - 1)],
      rng.bool(),
    );
    if (cc.h + 2 * cc.p[0] < kh || cc.w + 2 * cc.p[1] < kw) continue;
    const g = geometry(cc);
    const macs = g.n * g.cout * g.oh * g.ow * g.cin * g.kh * g.kw;
    if (macs <= 300_000) return cc;
  }
}

const shapeRng = new Rng(20251128);
for (let i = 0; i < 40; i++) {
  const cc = randomCase(shapeRng);
  test(`random shape #${i}: ${describeCase(cc)}`, () => {
    checkCase(cc, 5000 + i, i % 2 === 0);
  });
}

// ---------------------------------------------------------------------------------------------
// Outputs given with `out`: fully overwritten (prefilled with NaN), nothing written outside them.

test('out= buffers at unaligned offsets are fully overwritten and never overrun', () => {
  const shapes = [c(1, 17, 7, 13, 33, 3, 1, 1, true), c(3, 3, 5, 9, 7, [2, 3], [2, 1], [1, 2], true), c(1, 16, 16, 16, 16, 3, 1, 1, true)];
  shapes.forEach((cc, k) => {
    const rng = new Rng(77 + k);
    const g = geometry(cc);
    const x = randomFloat32(rng, g.n * g.cin * g.h * g.w);
    const w = randomFloat32(rng, g.cout * g.cin * g.kh * g.kw);
    const b = randomFloat32(rng, g.cout);
    const dy = randomFloat32(rng, g.n * g.cout * g.oh * g.ow);
    const xShape = [g.n, g.cin, g.h, g.w];
    const yShape = [g.n, g.cout, g.oh, g.ow];
    const refY = conv2dForwardRef(x, w, b, g);
    const refDx = conv2dBackwardInputRef(dy, w, g);
    const refDw = conv2dBackwardWeightRef(x, dy, g);
    const opts = { stride: form(cc.s), padding: form(cc.p) };
    const label = describeCase(cc);
    const X = new Tensor(x, xShape);
    const W = new Tensor(w, [g.cout, g.cin, g.kh, g.kw]);
    const DY = new Tensor(dy, yShape);
    forEachIsa(() => {
      for (const offset of [1, 6, 13]) {
        const yOut = guardedOutput(refY.value.length, offset);
        const outY = new Tensor(yOut.view, yShape);
        const y = conv2d(X, W, new Tensor(b, [g.cout]), { ...opts, out: outY });
        assert.is(y, outY, 'conv2d must return the out tensor it was given');
        assertClose(yOut.view, refY.value, sumTolerance(refY), `conv2d forward into out (offset ${offset}) ${label}`, nchw(yShape));
        yOut.intact(`conv2d forward (offset ${offset}) ${label}`);

        const dxOut = guardedOutput(refDx.value.length, offset);
        const outDx = new Tensor(dxOut.view, xShape);
        assert.is(conv2dBackwardInput(DY, W, xShape, { ...opts, out: outDx }), outDx);
        assertClose(dxOut.view, refDx.value, sumTolerance(refDx), `conv2dBackwardInput into out (offset ${offset}) ${label}`, nchw(xShape));
        dxOut.intact(`conv2dBackwardInput (offset ${offset}) ${label}`);

        const dwOut = guardedOutput(refDw.weight.value.length, offset);
        const dbOut = guardedOutput(g.cout, offset + 1);
        const outDw = new Tensor(dwOut.view, [g.cout, g.cin, g.kh, g.kw]);
        const outDb = new Tensor(dbOut.view, [g.cout]);
        const grads = conv2dBackwardWeight(X, DY, { kernelSize: form(cc.k), ...opts, out: { weight: outDw, bias: outDb } });
        assert.is(grads.weight, outDw);
        assert.is(grads.bias, outDb);
        assertClose(dwOut.view, refDw.weight.value, sumTolerance(refDw.weight), `conv2dBackwardWeight into out (offset ${offset}) ${label}`);
        assertClose(dbOut.view, refDw.bias.value, sumTolerance(refDw.bias), `conv2dBackwardWeight bias into out (offset ${offset}) ${label}`);
        dwOut.intact(`conv2dBackwardWeight weight (offset ${offset}) ${label}`);
        dbOut.intact(`conv2dBackwardWeight bias (offset ${offset}) ${label}`);
      }
    });
  });
});

test('outputs are overwritten, not accumulated into: two calls into the same out give the same result', () => {
  const cc = c(1, 7, 9, 9, 17, 3, 1, 1, true);
  const rng = new Rng(4242);
  const g = geometry(cc);
  const X = new Tensor(randomFloat32(rng, g.n * g.cin * g.h * g.w), [g.n, g.cin, g.h, g.w]);
  const W = new Tensor(randomFloat32(rng, g.cout * g.cin * 9), [g.cout, g.cin, 3, 3]);
  const DY = new Tensor(randomFloat32(rng, g.n * g.cout * g.oh * g.ow), [g.n, g.cout, g.oh, g.ow]);
  forEachIsa(() => {
    const out = Tensor.zeros([g.n, g.cout, g.oh, g.ow]);
    const first = clone(conv2d(X, W, null, { padding: 1, out }).data);
    conv2d(X, W, null, { padding: 1, out });
    assertClose(out.data, first, () => 0, 'conv2d forward called twice into one out');
    const dw = Tensor.zeros([g.cout, g.cin, 3, 3]);
    const db = Tensor.zeros([g.cout]);
    conv2dBackwardWeight(X, DY, { kernelSize: 3, padding: 1, out: { weight: dw, bias: db } });
    const dw1 = clone(dw.data);
    const db1 = clone(db.data);
    conv2dBackwardWeight(X, DY, { kernelSize: 3, padding: 1, out: { weight: dw, bias: db } });
    assertClose(dw.data, dw1, () => 0, 'conv2dBackwardWeight called twice into one out (weight)');
    assertClose(db.data, db1, () => 0, 'conv2dBackwardWeight called twice into one out (bias)');
  });
});

test('large magnitudes: the tolerance scales with the values (inputs x1e3, weights x1e-2)', () => {
  const cc = c(2, 17, 11, 11, 33, 3, 1, 1, true);
  const rng = new Rng(99);
  const g = geometry(cc);
  const x = randomFloat32(rng, g.n * g.cin * g.h * g.w, -1000, 1000);
  const w = randomFloat32(rng, g.cout * g.cin * 9, -0.01, 0.01);
  const b = randomFloat32(rng, g.cout, -5, 5);
  const ref = conv2dForwardRef(x, w, b, g);
  forEachIsa(() => {
    const y = conv2d(new Tensor(x, [g.n, g.cin, g.h, g.w]), new Tensor(w, [g.cout, g.cin, 3, 3]), new Tensor(b, [g.cout]), { padding: 1 });
    assertClose(y.data, ref.value, sumTolerance(ref), `conv2d forward, scaled inputs`, nchw([g.n, g.cout, g.oh, g.ow]));
  });
});

// ---------------------------------------------------------------------------------------------
// Central finite differences: native gradients vs d(sum(y * R)) computed with the float64 forward

const FD_CASES: ConvCase[] = [
  c(2, 3, 6, 7, 4, 3, 1, 1, true),
  c(1, 2, 7, 5, 3, [2, 3], [2, 1], [1, 2], true),
  c(3, 1, 5, 5, 2, 5, 1, 4, true),
  c(1, 4, 9, 9, 2, 3, 3, 0, true),
  c(1, 5, 8, 8, 3, 4, 2, 3, true),
  c(1, 17, 5, 6, 3, 3, 2, 2, true),
];

FD_CASES.forEach((cc, i) => {
  test(`gradients vs central finite differences: ${describeCase(cc)}`, () => {
    const rng = new Rng(9000 + i);
    const g = geometry(cc);
    const xShape = [g.n, g.cin, g.h, g.w];
    const wShape = [g.cout, g.cin, g.kh, g.kw];
    const x = randomFloat32(rng, g.n * g.cin * g.h * g.w);
    const w = randomFloat32(rng, g.cout * g.cin * g.kh * g.kw);
    const b = randomFloat32(rng, g.cout);
    const R = randomFloat32(rng, g.n * g.cout * g.oh * g.ow); // dL/dy for L = sum(y * R)
    const x64 = toFloat64(x);
    const w64 = toFloat64(w);
    const b64 = toFloat64(b);
    const ix = rng.sample(x.length, FD_SAMPLES);
    const iw = rng.sample(w.length, FD_SAMPLES);
    const ib = rng.sample(b.length, FD_SAMPLES);
    const opts = { stride: form(cc.s), padding: form(cc.p) };
    const label = describeCase(cc);
    const scaleOf = (a: ArrayLike<number>) => Math.max(...Array.from(a, Math.abs));
    forEachIsa(() => {
      const dx = conv2dBackwardInput(new Tensor(R, [g.n, g.cout, g.oh, g.ow]), new Tensor(w, wShape), xShape, opts).data;
      const grads = conv2dBackwardWeight(new Tensor(x, xShape), new Tensor(R, [g.n, g.cout, g.oh, g.ow]), { kernelSize: form(cc.k), ...opts });
      const common = { R, h: FD_H, rtol: FD_RTOL };
      checkGradient({
        ...common,
        label: `dL/dx ${label}`,
        point: x64,
        forward: (p) => conv2dForwardRef(p, w64, b64, g).value,
        analytic: dx,
        indices: ix,
        atol: FD_ATOL_REL * scaleOf(dx),
      });
      checkGradient({
        ...common,
        label: `dL/dweight ${label}`,
        point: w64,
        forward: (p) => conv2dForwardRef(x64, p, b64, g).value,
        analytic: grads.weight.data,
        indices: iw,
        atol: FD_ATOL_REL * scaleOf(grads.weight.data),
      });
      assert.ok(grads.bias);
      checkGradient({
        ...common,
        label: `dL/dbias ${label}`,
        point: b64,
        forward: (p) => conv2dForwardRef(x64, w64, p, g).value,
        analytic: grads.bias.data,
        indices: ib,
        atol: FD_ATOL_REL * scaleOf(grads.bias.data),
      });
    });
  });
});

test('a wrong gradient fails the finite-difference check (the checker can fail)', () => {
  const cc = FD_CASES[0];
  const rng = new Rng(1);
  const g = geometry(cc);
  const x = toFloat64(randomFloat32(rng, g.n * g.cin * g.h * g.w));
  const w = toFloat64(randomFloat32(rng, g.cout * g.cin * g.kh * g.kw));
  const R = randomFloat32(rng, g.n * g.cout * g.oh * g.ow);
  const right = conv2dBackwardInputRef(R, w, g).value;
  const wrong = Float64Array.from(right);
  wrong[7] += 1e-2 * Math.max(...Array.from(right, Math.abs)); // one coordinate off by 1% of the scale
  const check = (analytic: Float64Array) =>
    checkGradient({ label: 'dL/dx', point: x, forward: (p) => conv2dForwardRef(p, w, null, g).value, R, analytic, indices: [3, 7, 11], h: FD_H, rtol: FD_RTOL, atol: 1e-9 });
  check(right);
  assertFails(() => check(wrong), /disagree with central finite differences/, 'finite differences');
});

test('the reference tolerance rejects one missing term (as a wrong SIMD tail or padding offset would give)', () => {
  // A DCL-S-like 3x3 layer with 33 input channels: drop input channel 32 (the one lane past a
  // 32-wide block) from one output position and check that the comparison notices.
  const cc = c(1, 33, 8, 8, 16, 3, 1, 1, true);
  const rng = new Rng(2);
  const g = geometry(cc);
  const x = randomFloat32(rng, g.n * g.cin * g.h * g.w);
  const w = randomFloat32(rng, g.cout * g.cin * 9);
  const b = randomFloat32(rng, g.cout);
  const ref = conv2dForwardRef(x, w, b, g);
  const tail = Float32Array.from(ref.value);
  const o = 5 * g.oh * g.ow + 3 * g.ow + 4; // channel 5, y 3, x 4
  for (let ky = 0; ky < 3; ky++)
    for (let kx = 0; kx < 3; kx++) tail[o] -= x[(32 * g.h + 3 + ky - 1) * g.w + 4 + kx - 1] * w[((5 * g.cin + 32) * 3 + ky) * 3 + kx];
  assertClose(Float32Array.from(ref.value), ref.value, sumTolerance(ref), 'the reference rounded to float32');
  assertFails(() => assertClose(tail, ref.value, sumTolerance(ref), 'one channel missing'), /1 of 1024 elements outside the tolerance/, 'missing term');
});

test.run();
