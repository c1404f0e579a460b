// |tanh| and sigmoid, forward and backward, on every ISA path, against float64 Math.tanh / Math.exp
// and against central finite differences. Lengths cover every tail of 8- and 16-lane vectors
// (1, 7, 15, 16, 17, 31, 33, 45, 100), a large odd one (100003, several threads), and the values SIMD
// approximations get wrong: large |x| (saturation, exp overflow), 0 and -0, tiny and denormal x
// (where |tanh(x)| = |x| must keep full relative accuracy), +-Infinity and NaN (must pass through).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { absTanh, absTanhBackward, sigmoid, sigmoidBackward, Tensor } from '../lib/index.js';
import {
  absTanhBackwardRef,
  absTanhRef,
  checkGradient,
  MIN_NORMAL32,
  Rng,
  sigmoidBackwardRef,
  sigmoidRef,
  toFloat64,
  U32,
} from './reference.js';
import { assertClose, assertSame, assertUnchanged, clone, embed, forEachIsa, guardedOutput } from './helpers.js';

const test = suite('activation');

/**
 * Forward tolerance: |y - ref| <= ACT_RTOL |ref| + MIN_NORMAL32. The float64 reference rounded to
 * float32 is within 0.5 ulp (3e-8 .. 6e-8 relative); a good vector exp/tanh approximation is
 * within 1-3 ulp. 2e-6 is 16-32 ulp: room for any reasonable polynomial, while a wrong
 * coefficient, a lost range-reduction term or a catastrophic cancellation near 0 (tanh computed
 * as 1 - 2 / (exp(2x) + 1) loses all relative accuracy below x ~ 1e-4) is far outside it. The
 * absolute part lets results below the smallest normal float be flushed to zero (FTZ), nothing more.
 */
const ACT_RTOL = 2e-6;
const ACT_ATOL = MIN_NORMAL32;
/**
 * Backward tolerance: ACT_RTOL |ref| + BWD_ATOL_ULPS u |dy| + MIN_NORMAL32. 1 - y^2 (and y - y^2)
 * may be evaluated with or without a fused multiply-add, which moves the result by up to ~u in
 * absolute terms before it is multiplied by dy; 4 u |dy| covers that and a final rounding or two.
 */
const BWD_ATOL_ULPS = 4;
/**
 * Finite differences (float64 forward, h = 1e-4, truncation error ~1e-9): the native gradient
 * uses the float32 y, whose error (<= ~2 u) moves 1 - y^2 or y(1 - y) by up to ~4 u; 16 u |R| + 1e-5
 * relative is well clear of that and far below any formula error (a wrong sign, a missing factor).
 */
const FD_ATOL_ULPS = 16;
const FD_RTOL = 1e-5;

const LENGTHS = [1, 7, 15, 16, 17, 31, 33, 45, 100, 1000, 100003];

const SPECIALS = [
  0, -0, 20, -20, 100, -100, 1e30, -1e30, Infinity, -Infinity, NaN, -NaN,
  1e-30, -1e-30, 1e-38, -1e-38, 1e-40, -1e-45, 1e-7, -3e-4, 0.625, -0.62499994, 9, -9.01, 10, 17, -17,
  87, -87, 88.7, -88.8, 89, -89, 103, -104, 105, 3.4e38, -3.4e38,
];

/** A mixture of ordinary, large, tiny, threshold and (optionally) special values. */
function makeX(rng: Rng, n: number, specials = true): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const r = rng.float();
    const sign = rng.bool() ? 1 : -1;
    if (r < 0.6) x[i] = 3 * rng.normal();
    else if (r < 0.7) x[i] = 20 * rng.normal();
    else if (r < 0.8) x[i] = sign * 10 ** rng.uniform(-44, -2); // tiny, down to the denormals
    else if (r < 0.88) x[i] = sign * 10 ** rng.uniform(1, 38); // large
    else if (r < 0.96) x[i] = sign * rng.pick([0.625, 9.01, 87.3, 88.72, 104]) * (1 + rng.uniform(-1e-3, 1e-3)); // thresholds
    else x[i] = specials ? rng.pick(SPECIALS) : rng.normal();
  }
  return x;
}

const forwardTol = (ref: Float64Array) => (i: number) => ACT_RTOL * Math.abs(ref[i]) + ACT_ATOL;
const backwardTol = (ref: Float64Array, dy: ArrayLike<number>) => (i: number) =>
  ACT_RTOL * Math.abs(ref[i]) + BWD_ATOL_ULPS * U32 * Math.abs(dy[i]) + MIN_NORMAL32;

/** Range and sign properties that hold for every input: 0 <= y <= 1, never -0, NaN only from NaN. */
function checkRange(x: Float32Array, y: Float32Array, label: string): void {
  for (let i = 0; i < x.length; i++) {
    if (Number.isNaN(x[i])) {
      assert.ok(Number.isNaN(y[i]), `${label}: NaN input at ${i} gave ${y[i]}, not NaN`);
      continue;
    }
    if (!(y[i] >= 0 && y[i] <= 1) || Object.is(y[i], -0))
      assert.unreachable(`${label}: y[${i}] = ${Object.is(y[i], -0) ? '-0' : y[i]} for x = ${x[i]} is outside [0, 1] or negative zero`);
  }
}

for (const n of LENGTHS) {
  test(`forward and backward vs float64 reference, length ${n}`, () => {
    const rng = new Rng(n);
    const x = makeX(rng, n);
    const dy = Float32Array.from({ length: n }, () => rng.normal());
    const refTanh = absTanhRef(x);
    const refSig = sigmoidRef(x);
    const unaligned = n % 2 === 1;
    const X = new Tensor(unaligned ? embed(x, 1 + (n % 15)) : clone(x), [n]);
    const DY = new Tensor(unaligned ? embed(dy, 2 + (n % 13)) : clone(dy), [n]);
    forEachIsa(() => {
      const yt = absTanh(X);
      assert.equal([...yt.shape], [n]);
      assertClose(yt.data, refTanh, forwardTol(refTanh), `absTanh length ${n}`);
      checkRange(x, yt.data, `absTanh length ${n}`);
      const ys = sigmoid(X);
      assertClose(ys.data, refSig, forwardTol(refSig), `sigmoid length ${n}`);
      checkRange(x, ys.data, `sigmoid length ${n}`);

      // Backward with the y the forward produced (x may be NaN: then y is NaN and so is dx).
      const dxt = absTanhBackward(DY, X, yt);
      const wantT = absTanhBackwardRef(dy, x, yt.data);
      assertClose(dxt.data, wantT, backwardTol(wantT, dy), `absTanhBackward length ${n}`);
      const dxs = sigmoidBackward(DY, ys);
      const wantS = sigmoidBackwardRef(dy, ys.data);
      assertClose(dxs.data, wantS, backwardTol(wantS, dy), `sigmoidBackward length ${n}`);
    });
    assertUnchanged(x, X.data, `length ${n}: x`);
    assertUnchanged(dy, DY.data, `length ${n}: dy`);
  });
}

test('special values in every lane position: 0, -0, +-20, +-100, +-1e30, +-Infinity, NaN, tiny and denormal', () => {
  for (const n of [1, 7, 15, 16, 17, 31, 33, 47]) {
    for (let shift = 0; shift < SPECIALS.length; shift += n > 16 ? 5 : 1) {
      const x = Float32Array.from({ length: n }, (_, i) => SPECIALS[(i + shift) % SPECIALS.length]);
      const refTanh = absTanhRef(x);
      const refSig = sigmoidRef(x);
      forEachIsa(() => {
        const yt = absTanh(new Tensor(x, [n])).data;
        const ys = sigmoid(new Tensor(x, [n])).data;
        const label = `n=${n} shift=${shift}`;
        assertClose(yt, refTanh, forwardTol(refTanh), `absTanh specials ${label}`, (i) => `x=${x[i]}`);
        assertClose(ys, refSig, forwardTol(refSig), `sigmoid specials ${label}`, (i) => `x=${x[i]}`);
        checkRange(x, yt, `absTanh specials ${label}`);
        checkRange(x, ys, `sigmoid specials ${label}`);
      });
    }
  }
});

test('exact values the definitions fix: |tanh(+-0)| = +0, |tanh(x)| = |x| for tiny x, saturation, NaN', () => {
  const x = Float32Array.from([0, -0, 1e-30, -1e-30, 1e-20, -2e-38, 1e30, -1e30, Infinity, -Infinity, NaN, 100, -100, 20]);
  forEachIsa(() => {
    const yt = absTanh(new Tensor(x, [x.length])).data;
    assert.ok(Object.is(yt[0], 0) && Object.is(yt[1], 0), `|tanh(+-0)| must be +0, got ${yt[0]}, ${yt[1]}`);
    for (const i of [2, 3, 4, 5]) assert.is(yt[i], Math.abs(x[i]), `|tanh(${x[i]})| must equal |x| in float32`);
    for (const i of [6, 7, 8, 9, 11, 12, 13]) assert.ok(yt[i] >= 1 - 2 ** -23 && yt[i] <= 1, `|tanh(${x[i]})| = ${yt[i]}, expected 1`);
    assert.ok(Number.isNaN(yt[10]), 'NaN must pass through |tanh|');
    const ys = sigmoid(new Tensor(x, [x.length])).data;
    assert.ok(Math.abs(ys[0] - 0.5) <= 2 ** -24 && Math.abs(ys[1] - 0.5) <= 2 ** -24, `sigmoid(+-0) = 0.5, got ${ys[0]}, ${ys[1]}`);
    assert.ok(ys[6] === 1 && ys[8] === 1, `sigmoid(1e30), sigmoid(inf) must be 1: ${ys[6]}, ${ys[8]}`);
    assert.ok(ys[7] === 0 && ys[9] === 0, `sigmoid(-1e30), sigmoid(-inf) must be 0: ${ys[7]}, ${ys[9]}`);
    assert.ok(Number.isNaN(ys[10]), 'NaN must pass through sigmoid');
    assert.ok(ys[12] >= 0 && ys[12] < 1e-38, `sigmoid(-100) = 3.7e-44 (or 0 when flushed), got ${ys[12]}`);
  });
});

test('absTanh backward: sign(0) = 0, so dx = 0 at x = +-0 whatever y and dy; sign follows x', () => {
  for (const n of [1, 16, 17, 33]) {
    const rng = new Rng(n + 50);
    const x = Float32Array.from({ length: n }, (_, i) => (i % 3 === 0 ? 0 : i % 3 === 1 ? -0 : rng.normal()));
    const y = Float32Array.from({ length: n }, () => rng.float()); // any y: the formula uses the y given
    const dy = Float32Array.from({ length: n }, () => 1 + rng.float());
    const want = absTanhBackwardRef(dy, x, y);
    forEachIsa(() => {
      const dx = absTanhBackward(new Tensor(dy, [n]), new Tensor(x, [n]), new Tensor(y, [n])).data;
      for (let i = 0; i < n; i++) {
        if (x[i] === 0) assert.ok(dx[i] === 0, `dx[${i}] at x = ${Object.is(x[i], -0) ? '-0' : '0'} must be 0, got ${dx[i]}`);
        else assert.ok(Math.sign(dx[i]) === Math.sign(x[i]), `dx[${i}] must have the sign of x = ${x[i]} (dy > 0, y < 1), got ${dx[i]}`);
      }
      assertClose(dx, want, backwardTol(want, dy), `absTanhBackward with arbitrary y, n=${n}`);
    });
  }
});

test('sigmoid backward uses the y given: dy * y * (1 - y) for arbitrary y, including 0, 1/2 and 1', () => {
  const rng = new Rng(77);
  const n = 53;
  const y = Float32Array.from({ length: n }, (_, i) => (i < 5 ? [0, 0.5, 1, 1e-30, 0.99999994][i] : rng.float()));
  const dy = Float32Array.from({ length: n }, () => rng.normal());
  const want = sigmoidBackwardRef(dy, y);
  forEachIsa(() => {
    const dx = sigmoidBackward(new Tensor(dy, [n]), new Tensor(y, [n])).data;
    assertClose(dx, want, backwardTol(want, dy), 'sigmoidBackward with arbitrary y');
    assert.ok(dx[0] === 0 && dx[2] === 0, `y = 0 and y = 1 give dx = 0: ${dx[0]}, ${dx[2]}`);
  });
});

test('gradients vs central finite differences of the float64 forward', () => {
  for (const n of [17, 100]) {
    const rng = new Rng(1234 + n);
    // Away from the kink of |tanh| at 0 (|x| >= 0.05, ±4 at most so the gradient is not tiny).
    const x = Float32Array.from({ length: n }, () => (rng.bool() ? 1 : -1) * rng.uniform(0.05, 4));
    const R = Float32Array.from({ length: n }, () => rng.normal());
    const x64 = toFloat64(x);
    const indices = rng.sample(n, 40);
    forEachIsa(() => {
      const X = new Tensor(x, [n]);
      const Rt = new Tensor(R, [n]);
      const yt = absTanh(X);
      const ys = sigmoid(X);
      for (const [name, analytic, forward] of [
        ['absTanh', absTanhBackward(Rt, X, yt).data, absTanhRef],
        ['sigmoid', sigmoidBackward(Rt, ys).data, sigmoidRef],
      ] as const) {
        // Per-coordinate atol: one shared bound of FD_ATOL_ULPS u max|R| (|R| <~ 3).
        checkGradient({
          label: `d/dx ${name} (n=${n})`,
          point: x64,
          forward,
          R,
          analytic,
          indices,
          h: 1e-4,
          rtol: FD_RTOL,
          atol: FD_ATOL_ULPS * U32 * Math.max(...Array.from(R, Math.abs)),
        });
      }
    });
  }
});

test('out= at unaligned offsets (forward and backward): fully overwritten, nothing written outside; in place (out = x) works', () => {
  for (const n of [1, 15, 16, 17, 33, 1000]) {
    const rng = new Rng(n + 9);
    const x = makeX(rng, n);
    const refTanh = absTanhRef(x);
    const refSig = sigmoidRef(x);
    forEachIsa(() => {
      for (const offset of [1, 4, 7, 15]) {
        const out = guardedOutput(n, offset);
        const t = new Tensor(out.view, [n]);
        assert.is(absTanh(new Tensor(x, [n]), { out: t }), t, 'absTanh returns the out tensor');
        assertClose(out.view, refTanh, forwardTol(refTanh), `absTanh into out n=${n} offset ${offset}`);
        out.intact(`absTanh n=${n} offset ${offset}`);
        const out2 = guardedOutput(n, offset);
        const t2 = new Tensor(out2.view, [n]);
        sigmoid(new Tensor(x, [n]), { out: t2 });
        assertClose(out2.view, refSig, forwardTol(refSig), `sigmoid into out n=${n} offset ${offset}`);
        out2.intact(`sigmoid n=${n} offset ${offset}`);
      }
      // The backward ops write into out= too.
      const dy = Float32Array.from({ length: n }, () => rng.normal());
      const yt = absTanh(new Tensor(x, [n]));
      const ys = sigmoid(new Tensor(x, [n]));
      const wantT = absTanhBackwardRef(dy, x, yt.data);
      const wantS = sigmoidBackwardRef(dy, ys.data);
      for (const offset of [2, 9]) {
        const outT = guardedOutput(n, offset);
        const tT = new Tensor(outT.view, [n]);
        assert.is(absTanhBackward(new Tensor(dy, [n]), new Tensor(x, [n]), yt, { out: tT }), tT, 'absTanhBackward returns the out tensor');
        assertClose(outT.view, wantT, backwardTol(wantT, dy), `absTanhBackward into out n=${n} offset ${offset}`);
        outT.intact(`absTanhBackward n=${n} offset ${offset}`);
        const outS = guardedOutput(n, offset);
        const tS = new Tensor(outS.view, [n]);
        assert.is(sigmoidBackward(new Tensor(dy, [n]), ys, { out: tS }), tS, 'sigmoidBackward returns the out tensor');
        assertClose(outS.view, wantS, backwardTol(wantS, dy), `sigmoidBackward into out n=${n} offset ${offset}`);
        outS.intact(`sigmoidBackward n=${n} offset ${offset}`);
      }
      const inPlace = new Tensor(clone(x), [n]);
      absTanh(inPlace, { out: inPlace });
      assertClose(inPlace.data, refTanh, forwardTol(refTanh), `absTanh in place n=${n}`);
      const inPlace2 = new Tensor(clone(x), [n]);
      sigmoid(inPlace2, { out: inPlace2 });
      assertClose(inPlace2.data, refSig, forwardTol(refSig), `sigmoid in place n=${n}`);
    });
  }
});

test('any shape is element-wise: [3, 5], [2, 3, 1, 5], [1, 1, 1, 1, 17] give the flat result', () => {
  const rng = new Rng(3);
  for (const shape of [[3, 5], [2, 3, 1, 5], [1, 1, 1, 1, 17], [2, 16, 3, 3]]) {
    const size = shape.reduce((a, b) => a * b, 1);
    const x = makeX(rng, size, false);
    forEachIsa(() => {
      const flatT = absTanh(new Tensor(x, [size])).data;
      const flatS = sigmoid(new Tensor(x, [size])).data;
      const yt = absTanh(new Tensor(x, shape));
      const ys = sigmoid(new Tensor(x, shape));
      assert.equal([...yt.shape], shape);
      assert.equal([...ys.shape], shape);
      assertSame(yt.data, flatT, `absTanh shape [${shape}]`);
      assertSame(ys.data, flatS, `sigmoid shape [${shape}]`);
      const dy = new Tensor(Float32Array.from({ length: size }, () => rng.normal()), shape);
      assert.equal([...absTanhBackward(dy, new Tensor(x, shape), yt).shape], shape);
      assert.equal([...sigmoidBackward(dy, ys).shape], shape);
    });
  }
});

test.run();
