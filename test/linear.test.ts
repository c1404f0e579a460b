// linear (y = x w^T + b) forward, backward-input and backward-weight/bias on every ISA path,
// against the float64 reference and central finite differences. Sizes: batch 1, 3, 7, 65 (and
// 300, larger than a K block of the weight gradient); in-features 1, 5, 17, 23, 33, 45, 257, 1024, 4096;
// out-features 1, 3, 13, 31, 257 — tails of 8 and 16 lanes and of 6-row register tiles, a batch of
// 1 (a dot-product path), and sizes past the GEMM's K and N blocking.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { linear, linearBackwardInput, linearBackwardWeight, Tensor } from '../lib/index.js';
import {
  checkGradient,
  linearBackwardInputRef,
  linearBackwardWeightRef,
  linearForwardRef,
  randomFloat32,
  Rng,
  toFloat64,
} from './reference.js';
import { assertClose, assertUnchanged, clone, embed, forEachIsa, guardedOutput, rowCol, sumTolerance } from './helpers.js';

const test = suite('linear');

/** Finite differences: linear in each argument, so exact in float64 up to rounding; see conv2d.test.ts. */
const FD_H = 1e-3;
const FD_RTOL = 1e-4;
const FD_ATOL_REL = 1e-5;
const FD_SAMPLES = 30;

function checkLinear(n: number, inF: number, outF: number, bias: boolean, seed: number, unaligned: boolean): void {
  const rng = new Rng(seed);
  const x = randomFloat32(rng, n * inF);
  const w = randomFloat32(rng, outF * inF);
  const b = bias ? randomFloat32(rng, outF) : null;
  const dy = randomFloat32(rng, n * outF);
  const refY = linearForwardRef(x, w, b, n, inF, outF);
  const refDx = linearBackwardInputRef(dy, w, n, inF, outF);
  const refDw = linearBackwardWeightRef(x, dy, n, inF, outF);
  const place = (a: Float32Array) => (unaligned ? embed(a, 1 + (seed % 15)) : clone(a));
  const X = new Tensor(place(x), [n, inF]);
  const W = new Tensor(place(w), [outF, inF]);
  const B = b ? new Tensor(place(b), [outF]) : null;
  const DY = new Tensor(place(dy), [n, outF]);
  const label = `x[${n},${inF}] w[${outF},${inF}]${bias ? ' +bias' : ''}`;
  forEachIsa(() => {
    const y = linear(X, W, B);
    assert.equal([...y.shape], [n, outF], `${label}: y shape`);
    assertClose(y.data, refY.value, sumTolerance(refY), `linear forward ${label}`, rowCol(outF));
    const dx = linearBackwardInput(DY, W);
    assert.equal([...dx.shape], [n, inF], `${label}: dx shape`);
    assertClose(dx.data, refDx.value, sumTolerance(refDx), `linearBackwardInput ${label}`, rowCol(inF));
    const g = linearBackwardWeight(X, DY, bias ? undefined : { bias: false });
    assert.equal([...g.weight.shape], [outF, inF], `${label}: dw shape`);
    assertClose(g.weight.data, refDw.weight.value, sumTolerance(refDw.weight), `linearBackwardWeight (weight) ${label}`, rowCol(inF));
    if (bias) {
      assert.ok(g.bias, `${label}: bias gradient missing`);
      assertClose(g.bias.data, refDw.bias.value, sumTolerance(refDw.bias), `linearBackwardWeight (bias) ${label}`);
    } else {
      assert.is(g.bias, null, `${label}: bias: false must give a null bias gradient`);
    }
  });
  assertUnchanged(x, X.data, `${label}: x`);
  assertUnchanged(w, W.data, `${label}: weight`);
  if (b && B) assertUnchanged(b, B.data, `${label}: bias`);
  assertUnchanged(dy, DY.data, `${label}: dy`);
}

// Every combination of the small sizes, one test per (batch, in-features).
const BATCHES = [1, 3, 7, 65];
// 23 and 45 leave 7 and 13 (AVX-512) / 7 and 5 (AVX2) in-features past the last whole vector.
const INS = [1, 5, 17, 23, 33, 45];
const OUTS = [1, 3, 13, 31, 257];
let seed = 1;
for (const n of BATCHES)
  for (const inF of INS) {
    test(`forward and backward vs float64 reference: batch ${n}, in ${inF}, out ${OUTS.join('/')}`, () => {
      for (const outF of OUTS) {
        const s = seed++;
        checkLinear(n, inF, outF, s % 3 !== 0, s, s % 2 === 0);
      }
    });
  }

// Larger reductions and the blocked GEMM's edges (K past 256, N past 256 columns, batch past 6-row tiles).
const LARGE: [number, number, number, boolean][] = [
  [1, 4096, 257, true],
  [3, 4096, 13, false],
  [7, 4096, 31, true],
  [65, 4096, 31, true],
  [64, 1024, 256, true], // DCL-S fc1 at batch 64
  [64, 256, 32, true], // DCL-S fc2
  [1, 1024, 256, true], // DCL-S fc1 at batch 1
  [6, 257, 64, false],
  [13, 512, 65, true],
  [300, 33, 31, true], // the weight gradient sums over 300 rows
  [5, 17, 513, true],
];
LARGE.forEach(([n, inF, outF, bias], i) => {
  test(`forward and backward vs float64 reference: batch ${n}, in ${inF}, out ${outF}${bias ? ' +bias' : ''}`, () => {
    checkLinear(n, inF, outF, bias, 900 + i, i % 2 === 1);
  });
});

test('out= buffers at unaligned offsets are fully overwritten and never overrun', () => {
  for (const [n, inF, outF] of [
    [3, 17, 13],
    [7, 33, 31],
    [1, 5, 257],
    [65, 64, 16],
  ]) {
    const rng = new Rng(n * 1000 + inF + outF);
    const x = randomFloat32(rng, n * inF);
    const w = randomFloat32(rng, outF * inF);
    const b = randomFloat32(rng, outF);
    const dy = randomFloat32(rng, n * outF);
    const refY = linearForwardRef(x, w, b, n, inF, outF);
    const refDx = linearBackwardInputRef(dy, w, n, inF, outF);
    const refDw = linearBackwardWeightRef(x, dy, n, inF, outF);
    const label = `x[${n},${inF}] w[${outF},${inF}]`;
    const X = new Tensor(x, [n, inF]);
    const W = new Tensor(w, [outF, inF]);
    const DY = new Tensor(dy, [n, outF]);
    forEachIsa(() => {
      for (const offset of [1, 6, 11]) {
        const yOut = guardedOutput(n * outF, offset);
        const outY = new Tensor(yOut.view, [n, outF]);
        assert.is(linear(X, W, new Tensor(b, [outF]), { out: outY }), outY, 'linear returns the out tensor');
        assertClose(yOut.view, refY.value, sumTolerance(refY), `linear into out (offset ${offset}) ${label}`, rowCol(outF));
        yOut.intact(`linear forward (offset ${offset}) ${label}`);

        const dxOut = guardedOutput(n * inF, offset);
        const outDx = new Tensor(dxOut.view, [n, inF]);
        assert.is(linearBackwardInput(DY, W, { out: outDx }), outDx);
        assertClose(dxOut.view, refDx.value, sumTolerance(refDx), `linearBackwardInput into out (offset ${offset}) ${label}`, rowCol(inF));
        dxOut.intact(`linearBackwardInput (offset ${offset}) ${label}`);

        const dwOut = guardedOutput(outF * inF, offset);
        const dbOut = guardedOutput(outF, offset + 2);
        const outDw = new Tensor(dwOut.view, [outF, inF]);
        const outDb = new Tensor(dbOut.view, [outF]);
        const g = linearBackwardWeight(X, DY, { out: { weight: outDw, bias: outDb } });
        assert.is(g.weight, outDw);
        assert.is(g.bias, outDb);
        assertClose(dwOut.view, refDw.weight.value, sumTolerance(refDw.weight), `linearBackwardWeight into out (offset ${offset}) ${label}`, rowCol(inF));
        assertClose(dbOut.view, refDw.bias.value, sumTolerance(refDw.bias), `linearBackwardWeight bias into out (offset ${offset}) ${label}`);
        dwOut.intact(`linearBackwardWeight weight (offset ${offset}) ${label}`);
        dbOut.intact(`linearBackwardWeight bias (offset ${offset}) ${label}`);
      }
    });
  }
});

test('outputs are overwritten, not accumulated into: two calls into the same out agree', () => {
  const rng = new Rng(5);
  const [n, inF, outF] = [7, 33, 31];
  const X = new Tensor(randomFloat32(rng, n * inF), [n, inF]);
  const W = new Tensor(randomFloat32(rng, outF * inF), [outF, inF]);
  const DY = new Tensor(randomFloat32(rng, n * outF), [n, outF]);
  forEachIsa(() => {
    const y = Tensor.zeros([n, outF]);
    linear(X, W, null, { out: y });
    const y1 = clone(y.data);
    linear(X, W, null, { out: y });
    assertClose(y.data, y1, () => 0, 'linear twice into one out');
    const dx = Tensor.zeros([n, inF]);
    linearBackwardInput(DY, W, { out: dx });
    const dx1 = clone(dx.data);
    linearBackwardInput(DY, W, { out: dx });
    assertClose(dx.data, dx1, () => 0, 'linearBackwardInput twice into one out');
    const dw = Tensor.zeros([outF, inF]);
    const db = Tensor.zeros([outF]);
    linearBackwardWeight(X, DY, { out: { weight: dw, bias: db } });
    const dw1 = clone(dw.data);
    const db1 = clone(db.data);
    linearBackwardWeight(X, DY, { out: { weight: dw, bias: db } });
    assertClose(dw.data, dw1, () => 0, 'linearBackwardWeight twice into one out (weight)');
    assertClose(db.data, db1, () => 0, 'linearBackwardWeight twice into one out (bias)');
  });
});

const FD_SHAPES: [number, number, number][] = [
  [3, 5, 4],
  [7, 17, 13],
  [1, 33, 3],
  [9, 20, 17],
];
for (const [n, inF, outF] of FD_SHAPES) {
  test(`gradients vs central finite differences: batch ${n}, in ${inF}, out ${outF}`, () => {
    const rng = new Rng(n * 100 + inF);
    const x = randomFloat32(rng, n * inF);
    const w = randomFloat32(rng, outF * inF);
    const b = randomFloat32(rng, outF);
    const R = randomFloat32(rng, n * outF);
    const x64 = toFloat64(x);
    const w64 = toFloat64(w);
    const b64 = toFloat64(b);
    const ix = rng.sample(x.length, FD_SAMPLES);
    const iw = rng.sample(w.length, FD_SAMPLES);
    const ib = rng.sample(b.length, FD_SAMPLES);
    const scaleOf = (a: ArrayLike<number>) => Math.max(...Array.from(a, Math.abs));
    forEachIsa(() => {
      const dx = linearBackwardInput(new Tensor(R, [n, outF]), new Tensor(w, [outF, inF])).data;
      const g = linearBackwardWeight(new Tensor(x, [n, inF]), new Tensor(R, [n, outF]));
      assert.ok(g.bias);
      const common = { R, h: FD_H, rtol: FD_RTOL };
      const label = `batch ${n}, in ${inF}, out ${outF}`;
      checkGradient({ ...common, label: `dL/dx ${label}`, point: x64, forward: (p) => linearForwardRef(p, w64, b64, n, inF, outF).value, analytic: dx, indices: ix, atol: FD_ATOL_REL * scaleOf(dx) });
      checkGradient({ ...common, label: `dL/dweight ${label}`, point: w64, forward: (p) => linearForwardRef(x64, p, b64, n, inF, outF).value, analytic: g.weight.data, indices: iw, atol: FD_ATOL_REL * scaleOf(g.weight.data) });
      checkGradient({ ...common, label: `dL/dbias ${label}`, point: b64, forward: (p) => linearForwardRef(x64, w64, p, n, inF, outF).value, analytic: g.bias.data, indices: ib, atol: FD_ATOL_REL * scaleOf(g.bias.data) });
    });
  });
}

test.run();
