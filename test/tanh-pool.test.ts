// Fused |tanh| + max-pool (absTanhMaxPool2d) forward and backward on every ISA path, against a
// float64 reference of the rule in native/include/dcl/kernels.h: best = -1 with the window's first
// element as the winner, walk the window row by row, take an element when |x| is strictly greater
// (NaN never takes over, ties keep the first); y = tanh(|x[winner]|). argmax is compared exactly;
// y within 2.5e-7 (serial: libm tanhf, about 1 ulp; SIMD: the vector tanh, <= 9e-8 + rounding);
// dx against the reference scatter of dy * sign(x) * (1 - y^2) and against central differences.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { absTanh, absTanhMaxPool2d, absTanhMaxPool2dBackward, autograd as ag, DclError, maxPool2d, Tensor } from '../lib/index.js';
import { poolGeometry, Rng, type Pair, type PoolGeometry } from './reference.js';
import { assertClose, assertSame, assertUnchanged, clone, embed, forEachIsa, guardedOutput, nchw } from './helpers.js';

const test = suite('absTanhMaxPool2d');

const Y_TOL = 2.5e-7;

interface Case {
  n: number;
  c: number;
  h: number;
  w: number;
  k: Pair;
  s: Pair;
}
const cs = (n: number, c: number, h: number, w: number, k: number | Pair, s: number | Pair): Case => ({
  n,
  c,
  h,
  w,
  k: typeof k === 'number' ? [k, k] : k,
  s: typeof s === 'number' ? [s, s] : s,
});

// 2x2/2 on the DCL-S-like plane widths (packed rows for 8/16-lane vectors, wide rows, tails,
// odd sizes that drop a row/column), then general windows: overlapping (stride < kernel), gaps
// (stride > kernel), rectangular, gathers (stride > 1) and 1x1.
const CASES: Case[] = [
  cs(2, 3, 64, 64, 2, 2),
  cs(2, 5, 32, 32, 2, 2),
  cs(3, 4, 16, 16, 2, 2),
  cs(2, 7, 8, 8, 2, 2),
  cs(1, 3, 4, 4, 2, 2),
  cs(1, 2, 2, 2, 2, 2),
  cs(2, 3, 9, 11, 2, 2),
  cs(1, 2, 7, 37, 2, 2),
  cs(1, 2, 6, 70, 2, 2),
  cs(2, 3, 10, 10, 3, 1),
  cs(2, 2, 11, 13, 3, 2),
  cs(1, 3, 12, 40, [2, 3], [1, 2]),
  cs(1, 2, 9, 9, 2, 3),
  cs(1, 2, 5, 19, 1, 1),
  cs(1, 1, 17, 35, [4, 5], [3, 2]),
  cs(1, 1, 6, 6, 6, 6),
];

const describeCase = (c: Case) => `x[${c.n},${c.c},${c.h},${c.w}] window ${c.k[0]}x${c.k[1]} stride ${c.s[0]}x${c.s[1]}`;
const geometry = (c: Case): PoolGeometry => poolGeometry(c.n, c.c, c.h, c.w, c.k, c.s);
const opts = (c: Case) => ({ kernelSize: c.k, stride: c.s });

type Fill = 'continuous' | 'ties' | 'special' | 'wide';

function makeInput(rng: Rng, length: number, fill: Fill): Float32Array {
  const x = new Float32Array(length);
  for (let i = 0; i < length; i++) {
    switch (fill) {
      case 'continuous':
        x[i] = rng.normal() * 1.5;
        break;
      case 'ties': // |x| ties between signs: -1 and 1, -2 and 2, -0 and 0
        x[i] = rng.int(-2, 2);
        if (x[i] === 0 && rng.bool()) x[i] = -0;
        break;
      case 'special': {
        const r = rng.float();
        x[i] = r < 0.2 ? Number.NaN : r < 0.27 ? -Infinity : r < 0.32 ? Infinity : r < 0.4 ? -0 : r < 0.46 ? 0 : rng.int(-2, 2) * 0.75;
        break;
      }
      case 'wide': // small (the polynomial branch), large (saturating), denormal
        x[i] = rng.pick([1e-40, -3e-39, 1e-6, -0.3, 0.6249, 0.6251, -4, 9, -20, 100]) * (rng.bool() ? 1 : 1 + rng.float() * 1e-3);
        break;
    }
  }
  return x;
}

function forwardRef(x: ArrayLike<number>, g: PoolGeometry): { value: Float64Array; argmax: Int32Array } {
  const { n, c, h: H, w: W, kh, kw, sh, sw, oh, ow } = g;
  const y = new Float64Array(n * c * oh * ow);
  const argmax = new Int32Array(y.length);
  for (let p = 0; p < n * c; p++)
    for (let oy = 0; oy < oh; oy++)
      for (let ox = 0; ox < ow; ox++) {
        let best = -1;
        let bestIndex = oy * sh * W + ox * sw;
        for (let ky = 0; ky < kh; ky++)
          for (let kx = 0; kx < kw; kx++) {
            const idx = (oy * sh + ky) * W + ox * sw + kx;
            const a = Math.abs(x[p * H * W + idx]);
            if (a > best) {
              best = a;
              bestIndex = idx;
            }
          }
        const o = p * oh * ow + oy * ow + ox;
        y[o] = Math.tanh(Math.abs(x[p * H * W + bestIndex]));
        argmax[o] = bestIndex;
      }
  return { value: y, argmax };
}

/** dx[argmax] += dy * sign(x[argmax]) * (1 - y^2); also a float32 error bound per element. */
function backwardRef(dy: ArrayLike<number>, argmax: Int32Array, x: ArrayLike<number>, y: ArrayLike<number>, g: PoolGeometry) {
  const plane = g.h * g.w;
  const ohw = g.oh * g.ow;
  const dx = new Float64Array(g.n * g.c * plane);
  const mag = new Float64Array(dx.length);
  for (let p = 0; p < g.n * g.c; p++)
    for (let i = 0; i < ohw; i++) {
      const a = p * plane + argmax[p * ohw + i];
      const xv = x[a];
      const sign = xv > 0 ? 1 : xv < 0 ? -1 : 0;
      const yv = y[p * ohw + i];
      const t = dy[p * ohw + i] * sign * (1 - yv * yv);
      dx[a] += t;
      // float32 rounds y * y (half an ulp of 1 at most) before 1 - y^2 cancels, and rounds each
      // product and sum: |dy| 1.2e-7 plus a relative part.
      mag[a] += 4e-7 * Math.abs(t) + 1.2e-7 * Math.abs(dy[p * ohw + i] * sign);
    }
  return { dx, mag };
}

const yTol = () => Y_TOL;

for (const c of CASES)
  for (const fill of ['continuous', 'ties', 'special', 'wide'] as Fill[])
    test(`forward + backward ${describeCase(c)}, ${fill}`, () => {
      const g = geometry(c);
      const rng = new Rng(c.h * 131 + c.w * 7 + c.k[0] + fill.length);
      const xs = [c.n, c.c, c.h, c.w];
      const xv = embed(makeInput(rng, c.n * c.c * c.h * c.w, fill));
      const ref = forwardRef(xv, g);
      const outShape = [c.n, c.c, g.oh, g.ow];
      const size = ref.value.length;
      const dy = embed(Float32Array.from({ length: size }, () => rng.int(-8, 8) / 4));
      let serialY: Float32Array | undefined;
      forEachIsa((isa) => {
        const before = clone(xv);
        const out = guardedOutput(size);
        const argmax = new Int32Array(size).fill(-7);
        const r = absTanhMaxPool2d(new Tensor(xv, xs), { ...opts(c), out: { output: new Tensor(out.view, outShape), argmax } });
        out.intact(`${isa} y`);
        assertUnchanged(before, xv, `${isa} forward`);
        assertSame(r.argmax, ref.argmax, `${isa} argmax`, nchw(outShape));
        assertClose(r.output.data, ref.value, yTol, `${isa} y`, nchw(outShape));
        if (isa === 'serial') serialY = clone(r.output.data);
        else if (serialY) assertClose(r.output.data, serialY, yTol, `${isa} y vs serial`, nchw(outShape));
        // Same values as the unfused composition (argmax may differ only where |tanh| saturates).
        if (fill !== 'special') {
          const comp = maxPool2d(absTanh(new Tensor(xv, xs)), opts(c));
          assertClose(r.output.data, comp.output.data, yTol, `${isa} y vs maxPool2d(absTanh)`, nchw(outShape));
        }
        // Backward.
        const dxOut = guardedOutput(xv.length);
        const yv = r.output.data;
        const dx = absTanhMaxPool2dBackward(new Tensor(dy, outShape), r.argmax, new Tensor(xv, xs), new Tensor(yv, outShape), {
          ...opts(c),
          out: new Tensor(dxOut.view, xs),
        });
        dxOut.intact(`${isa} dx`);
        const b = backwardRef(dy, r.argmax, xv, yv, g);
        assertClose(dx.data, b.dx, (i) => b.mag[i] + 1e-37, `${isa} dx`, nchw(xs));
      });
    });

test('backward matches central differences (no ties), every ISA', () => {
  for (const c of [cs(2, 3, 8, 8, 2, 2), cs(1, 2, 9, 10, 3, 2), cs(1, 2, 7, 7, 3, 1), cs(1, 1, 6, 20, [2, 3], [2, 1])]) {
    const g = geometry(c);
    const rng = new Rng(99 + c.w);
    const len = c.n * c.c * c.h * c.w;
    // Distinct |x| at least 0.01 apart and away from 0, random signs: no tie within eps.
    const perm = rng.permutation(len);
    const x = Float32Array.from(perm, (v) => ((v + 0.5) / len) * 2.5 * (rng.bool() ? 1 : -1));
    const xs = [c.n, c.c, c.h, c.w];
    const outShape = [c.n, c.c, g.oh, g.ow];
    const dy = Float32Array.from({ length: g.n * g.c * g.oh * g.ow }, () => rng.uniform(-1, 1));
    const F = (xx: Float64Array) => forwardRef(xx, g).value.reduce((s, v, i) => s + v * dy[i], 0);
    const eps = 1e-5;
    const fd = new Float64Array(len);
    const x64 = Float64Array.from(x);
    for (let i = 0; i < len; i++) {
      const keep = x64[i];
      x64[i] = keep + eps;
      const fp = F(x64);
      x64[i] = keep - eps;
      const fm = F(x64);
      x64[i] = keep;
      fd[i] = (fp - fm) / (2 * eps);
    }
    forEachIsa((isa) => {
      const r = absTanhMaxPool2d(new Tensor(x, xs), opts(c));
      const dx = absTanhMaxPool2dBackward(new Tensor(dy, outShape), r.argmax, new Tensor(x, xs), r.output, opts(c));
      assertClose(dx.data, fd, (i) => 1e-5 + 1e-5 * Math.abs(fd[i]), `${isa} ${describeCase(c)} dx vs finite differences`, nchw(xs));
    });
  }
});

test('tie, NaN, infinity and zero rules, by hand', () => {
  const x = new Tensor(
    Float32Array.from([
      // window 0: -2 ties 2 (first wins: index 0); window 1: NaN first then 0.5 -> 0.5 wins
      -2, 2, NaN, 0.5,
      2, -1, 0, -0,
      // window 2: all NaN -> first (index 8), y NaN; window 3: -inf after 3 -> -inf wins, y = 1
      NaN, NaN, 3, -Infinity,
      NaN, NaN, 1, 2,
    ]),
    [1, 1, 4, 4],
  );
  // Windows (2x2/2): w0 = {-2, 2, 2, -1}, w1 = {NaN, 0.5, 0, -0}, w2 = {NaN, NaN, NaN, NaN}, w3 = {3, -inf, 1, 2}.
  forEachIsa((isa) => {
    const r = absTanhMaxPool2d(x, { kernelSize: 2 });
    assertSame(r.argmax, [0, 3, 8, 11], `${isa} argmax`);
    assertClose(r.output.data, [Math.tanh(2), Math.tanh(0.5), NaN, 1], yTol, `${isa} y`);
    const dx = absTanhMaxPool2dBackward(new Tensor(Float32Array.of(1, 1, 1, 1), [1, 1, 2, 2]), r.argmax, x, r.output, { kernelSize: 2 });
    const want = new Float64Array(16);
    want[0] = -(1 - r.output.data[0] ** 2);
    want[3] = 1 - r.output.data[1] ** 2;
    want[8] = NaN; // sign(NaN) = 0 times (1 - NaN^2)
    want[11] = -0; // sign(-inf) (1 - 1)
    assertClose(dx.data, want, () => 1e-7, `${isa} dx`);
    // All-zero window: the first element wins, y = 0, and sign(0) = 0 gives no gradient.
    const z = absTanhMaxPool2d(new Tensor(Float32Array.of(0, -0, 0, -0), [1, 1, 2, 2]), { kernelSize: 2 });
    assertSame(z.argmax, [0], `${isa} zero argmax`);
    assertSame(z.output.data, [0], `${isa} zero y`);
    const dz = absTanhMaxPool2dBackward(new Tensor(Float32Array.of(5), [1, 1, 1, 1]), z.argmax, new Tensor(Float32Array.of(0, -0, 0, -0), [1, 1, 2, 2]), z.output, { kernelSize: 2 });
    assertSame(dz.data, [0, 0, 0, 0], `${isa} zero dx`);
  });
});

test('overlapping windows add up in dx', () => {
  // 3x3 stride 1 on a plane with one dominant element: every window containing it sends its dy there.
  const x = new Float32Array(25).fill(0.1);
  x[12] = -3;
  forEachIsa((isa) => {
    const r = absTanhMaxPool2d(new Tensor(x, [1, 1, 5, 5]), { kernelSize: 3, stride: 1 });
    assertSame(r.argmax, new Int32Array(9).fill(12), `${isa} argmax`);
    const dx = absTanhMaxPool2dBackward(new Tensor(new Float32Array(9).fill(1), [1, 1, 3, 3]), r.argmax, new Tensor(x, [1, 1, 5, 5]), r.output, {
      kernelSize: 3,
      stride: 1,
    });
    const want = new Float64Array(25);
    want[12] = -9 * (1 - r.output.data[0] ** 2);
    assertClose(dx.data, want, () => 1e-6, `${isa} dx`);
  });
});

test('2x2 backward with argmax outside its own window (any index in the plane) still scatter-adds', () => {
  const rng = new Rng(17);
  for (const [h, w] of [[8, 8], [16, 16], [9, 70], [4, 4]]) {
    const g = poolGeometry(2, 3, h, w, [2, 2], [2, 2]);
    const xs = [2, 3, h, w];
    const outShape = [2, 3, g.oh, g.ow];
    const x = Float32Array.from({ length: 6 * h * w }, () => rng.normal());
    const size = 6 * g.oh * g.ow;
    const y = Float32Array.from({ length: size }, () => rng.float());
    const dy = Float32Array.from({ length: size }, () => rng.int(-8, 8) / 4);
    const base = absTanhMaxPool2d(new Tensor(x, xs), { kernelSize: 2 }).argmax;
    const argmax = Int32Array.from(base);
    argmax[rng.int(0, size - 1)] = rng.int(0, h * w - 1); // one window sends its gradient elsewhere
    argmax[size - 1] = 0; // and the last one to the plane's first element
    const b = backwardRef(dy, argmax, x, y, g);
    forEachIsa((isa) => {
      const dx = absTanhMaxPool2dBackward(new Tensor(dy, outShape), argmax, new Tensor(x, xs), new Tensor(y, outShape), { kernelSize: 2 });
      assertClose(dx.data, b.dx, (i) => b.mag[i] + 1e-37, `${isa} ${h}x${w} dx`, nchw(xs));
    });
  }
});

test('autograd op and nn module: same gradient as absTanh then maxPool2d', () => {
  const rng = new Rng(5);
  const shape = [2, 3, 8, 10];
  const data = Float32Array.from({ length: 480 }, () => rng.normal());
  const seed = Float32Array.from({ length: 2 * 3 * 4 * 5 }, () => rng.uniform(-1, 1));
  const a = ag.parameter(new Tensor(clone(data), shape));
  const ya = ag.absTanhMaxPool2d(a, { kernelSize: 2 });
  ya.backward(new Tensor(seed, ya.shape));
  const b = ag.parameter(new Tensor(clone(data), shape));
  const yb = ag.maxPool2d(ag.absTanh(b), { kernelSize: 2 });
  yb.backward(new Tensor(seed, yb.shape));
  assertClose(ya.value.data, yb.value.data, yTol, 'values');
  assertClose(a.grad!.data, b.grad!.data, () => 1e-6, 'gradients');
});

test('bad arguments throw DclError', () => {
  const x = new Tensor(new Float32Array(16), [1, 1, 4, 4]);
  const expectError = (fn: () => unknown, code: string, label: string) => {
    try {
      fn();
    } catch (error) {
      assert.ok(error instanceof DclError, `${label}: a DclError (got ${String(error)})`);
      assert.is((error as DclError).code, code, `${label}: code`);
      return;
    }
    assert.unreachable(`${label}: expected a DclError`);
  };
  const bad = absTanhMaxPool2d as (...args: unknown[]) => unknown;
  const badB = absTanhMaxPool2dBackward as (...args: unknown[]) => unknown;
  expectError(() => bad(x), 'E_ARG', 'no options');
  expectError(() => bad(x, { kernelSize: 0 }), 'E_ARG', 'kernel 0');
  expectError(() => bad(x, { kernelSize: 5 }), 'E_SHAPE', 'window larger than x');
  expectError(() => bad(x, { kernelSize: 2, stride: -1 }), 'E_ARG', 'negative stride');
  expectError(() => bad(x, { kernelSize: 2, bogus: 1 }), 'E_ARG', 'unknown key');
  expectError(() => bad(new Tensor(new Float32Array(16), [4, 4]), { kernelSize: 2 }), 'E_SHAPE', '2-D x');
  expectError(() => bad(x, { kernelSize: 2, out: { argmax: new Int32Array(3) } }), 'E_ARG', 'argmax length');
  expectError(() => bad(x, { kernelSize: 2, out: { output: new Tensor(new Float32Array(4), [1, 1, 4, 1]) } }), 'E_SHAPE', 'output shape');
  const r = absTanhMaxPool2d(x, { kernelSize: 2 });
  const dy = new Tensor(new Float32Array(4), [1, 1, 2, 2]);
  expectError(() => badB(new Tensor(new Float32Array(9), [1, 1, 3, 3]), r.argmax, x, r.output, { kernelSize: 2 }), 'E_SHAPE', 'dy shape');
  expectError(() => badB(dy, r.argmax, x, new Tensor(new Float32Array(9), [1, 1, 3, 3]), { kernelSize: 2 }), 'E_SHAPE', 'y shape');
  expectError(() => badB(dy, new Int32Array(3), x, r.output, { kernelSize: 2 }), 'E_ARG', 'argmax length');
  expectError(() => badB(dy, [0, 1, 2, 3], x, r.output, { kernelSize: 2 }), 'E_ARG', 'argmax not Int32Array');
  expectError(() => badB(dy, r.argmax, x, r.output, { kernelSize: 2, out: dy }), 'E_SHAPE', 'out shape');
  expectError(() => badB(dy, r.argmax, x, r.output, { kernelSize: 2, out: x }), 'E_ARG', 'out overlaps x');
  forEachIsa((isa) => {
    expectError(() => badB(dy, Int32Array.from([0, 1, 16, 3]), x, r.output, { kernelSize: 2 }), 'E_ARG', `${isa} argmax out of range`);
    expectError(() => badB(dy, Int32Array.from([0, -1, 2, 3]), x, r.output, { kernelSize: 2 }), 'E_ARG', `${isa} negative argmax`);
  });
});

test.run();
