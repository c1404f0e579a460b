// The autograd layer (lib/autograd.ts): every differentiable op's backward against central finite
// differences of a float64 reference forward (test/reference.ts), gradient accumulation, noGrad,
// graph freeing, kept buffers (reuse, stale detection, siamese use), custom ops, and a whole tiny
// network (conv -> pool -> |tanh| -> linear -> sigmoid) checked end to end.
//
// Tolerances: the analytic gradients come from float32 kernels fed float32 activations; the finite
// differences from a float64 forward. Linear ops (conv, linear, pool with its winners fixed, sums)
// are exact in float64 up to ~1e-12 here, so what remains is float32 rounding of the gradient and
// of the saved activations: ~1e-6 relative. Smooth non-linear ops add the central difference's own
// error, h^2 |f'''| / 6 ~ 1e-8 for h = 1e-4. FD_RTOL = 1e-3 with an absolute floor of 1e-4 of the
// largest gradient is far above both, and far below the effect of a missing or doubled term.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { autograd as ag, BufferSite, DclError, noGrad, Tensor, Var, zeroGrad } from '../lib/index.js';
import { native } from '../lib/native.js';
import {
  absTanhRef,
  checkGradient,
  conv2dForwardRef,
  convGeometry,
  linearForwardRef,
  maxPool2dForwardRef,
  poolGeometry,
  randomFloat32,
  Rng,
  sigmoidRef,
  toFloat64,
  type ConvGeometry,
  type PoolGeometry,
} from './reference.js';
import { assertClose, assertFails, assertSame, forEachIsa } from './helpers.js';

const test = suite('autograd');

const FD_H = 1e-4;
const FD_RTOL = 1e-3;
const FD_ATOL_REL = 1e-4;

function param(rng: Rng, shape: number[], lo = -1, hi = 1): Var {
  return new Var(new Tensor(randomFloat32(rng, shape.reduce((a, b) => a * b, 1), lo, hi), shape), { requiresGrad: true });
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/** Every index when small, else a seeded sample of `count`. */
function someIndices(rng: Rng, n: number, count = 40): number[] {
  return n <= count ? Array.from({ length: n }, (_, i) => i) : rng.sample(n, count);
}

/**
 * Checks v.grad against central differences of L = sum(forward(point) * R), point = v's values in
 * float64 (other inputs captured by `forward`).
 */
function fdCheck(label: string, v: Var, forward: (p: Float64Array) => ArrayLike<number>, R: ArrayLike<number>, rng: Rng, h = FD_H): void {
  assert.ok(v.grad, `${label}: gradient missing`);
  const analytic = v.grad!.data;
  checkGradient({
    label,
    point: toFloat64(v.data),
    forward,
    R,
    analytic,
    indices: someIndices(rng, v.size),
    h,
    rtol: FD_RTOL,
    atol: FD_ATOL_REL * Math.max(1e-30, maxAbs(analytic)),
  });
}

function pooled(x: ArrayLike<number>, argmax: Int32Array, g: PoolGeometry): Float64Array {
  // The pooled values with the winners fixed: the function max-pool is locally, away from ties.
  const y = new Float64Array(argmax.length);
  const plane = g.h * g.w;
  const per = g.oh * g.ow;
  for (let i = 0; i < y.length; i++) y[i] = x[Math.floor(i / per) * plane + argmax[i]];
  return y;
}

// ---------------------------------------------------------------------------------------------
// Ops against finite differences

test('conv2d: gradients of x, weight and bias (stride 2, padding 1, with and without a site)', () => {
  for (const site of [undefined, new BufferSite()]) {
    const rng = new Rng(11);
    const g: ConvGeometry = convGeometry(2, 3, 7, 6, 4, [3, 3], [2, 2], [1, 1]);
    const x = param(rng, [2, 3, 7, 6]);
    const w = param(rng, [4, 3, 3, 3]);
    const b = param(rng, [4]);
    const y = ag.conv2d(x, w, b, { stride: 2, padding: 1, site });
    assert.equal([...y.shape], [2, 4, g.oh, g.ow]);
    const R = randomFloat32(rng, y.size);
    y.backward(new Tensor(R, y.shape));
    const xs = toFloat64(x.data), ws = toFloat64(w.data), bs = toFloat64(b.data);
    fdCheck('conv2d d/dx', x, (p) => conv2dForwardRef(p, ws, bs, g).value, R, rng);
    fdCheck('conv2d d/dw', w, (p) => conv2dForwardRef(xs, p, bs, g).value, R, rng);
    fdCheck('conv2d d/db', b, (p) => conv2dForwardRef(xs, ws, p, g).value, R, rng);
  }
});

test('conv2d: an input that needs no gradient (the image) costs no backward-input call', () => {
  const rng = new Rng(12);
  const g = convGeometry(2, 1, 9, 9, 3, [5, 5], [1, 1], [2, 2]);
  const image = new Tensor(randomFloat32(rng, 2 * 81), [2, 1, 9, 9]);
  const w = param(rng, [3, 1, 5, 5]);
  const b = param(rng, [3]);
  const calls = { input: 0, weight: 0 };
  const original = { input: native.conv2dBackwardInput, weight: native.conv2dBackwardWeight };
  native.conv2dBackwardInput = (...a: Parameters<typeof original.input>) => (calls.input++, original.input(...a));
  native.conv2dBackwardWeight = (...a: Parameters<typeof original.weight>) => (calls.weight++, original.weight(...a));
  try {
    const y = ag.conv2d(image, w, b, { padding: 2 });
    const R = randomFloat32(rng, y.size);
    y.backward(new Tensor(R, y.shape));
    assert.is(calls.input, 0, 'conv2dBackwardInput was called for an input without requiresGrad');
    assert.is(calls.weight, 1);
    fdCheck('conv2d d/dw (constant input)', w, (p) => conv2dForwardRef(image.data, p, b.data, g).value, R, rng);
    fdCheck('conv2d d/db (constant input)', b, (p) => conv2dForwardRef(image.data, w.data, p, g).value, R, rng);
    // Only the bias wanted: the weight gradient goes to scratch and is dropped.
    w.requiresGrad = false;
    zeroGrad([w, b]);
    const y2 = ag.conv2d(image, w, b, { padding: 2 });
    y2.backward(new Tensor(R, y2.shape));
    assert.is(w.grad, null);
    fdCheck('conv2d d/db (weight frozen)', b, (p) => conv2dForwardRef(image.data, w.data, p, g).value, R, rng);
  } finally {
    native.conv2dBackwardInput = original.input;
    native.conv2dBackwardWeight = original.weight;
  }
});

test('maxPool2d: gradient goes to the winners (2x2 stride 2, and overlapping 3x3 stride 2)', () => {
  for (const [k, s] of [
    [2, 2],
    [3, 2],
  ]) {
    const rng = new Rng(20 + k);
    const g = poolGeometry(2, 3, 7, 6, [k, k], [s, s]);
    const x = param(rng, [2, 3, 7, 6]);
    const y = ag.maxPool2d(x, { kernelSize: k, stride: s, site: new BufferSite() });
    const ref = maxPool2dForwardRef(x.data, g);
    assert.equal(Array.from(y.data), Array.from(ref.value), 'pooled values');
    const R = randomFloat32(rng, y.size);
    y.backward(new Tensor(R, y.shape));
    fdCheck(`maxPool2d ${k}/${s} d/dx`, x, (p) => pooled(p, ref.argmax, g), R, rng);
  }
});

test('absTanh and sigmoid: gradients (in place into the output gradient when possible)', () => {
  const rng = new Rng(30);
  const shape = [3, 5, 7];
  const n = 105;
  // |x| >= 0.05 keeps |tanh| away from its kink at 0 (h = 1e-4).
  const values = randomFloat32(rng, n, -3, 3).map((v) => (Math.abs(v) < 0.05 ? v + 0.1 : v));
  for (const name of ['absTanh', 'sigmoid'] as const) {
    const x = new Var(new Tensor(values.slice(), shape), { requiresGrad: true });
    const y = name === 'absTanh' ? ag.absTanh(x) : ag.sigmoid(x);
    const ref = name === 'absTanh' ? absTanhRef : sigmoidRef;
    assertClose(y.data, ref(x.data), (i) => 1e-6 * Math.abs(ref(x.data)[i]) + 1e-7, `${name} forward`);
    // Through scale so that the op's output gradient is engine scratch (the in-place path).
    const R = randomFloat32(rng, n);
    const z = ag.scale(y, 2);
    z.backward(new Tensor(R, shape));
    fdCheck(`${name} d/dx (via scale 2)`, x, (p) => Array.from(ref(p), (v) => 2 * v), R, rng);
    // Directly from the user's gradient (not writable: must not be modified).
    x.zeroGrad();
    const y2 = name === 'absTanh' ? ag.absTanh(x) : ag.sigmoid(x);
    const seed = new Tensor(R.slice(), shape);
    y2.backward(seed);
    assert.equal(Array.from(seed.data), Array.from(R), `${name}: backward modified the caller's gradient`);
    fdCheck(`${name} d/dx`, x, (p) => ref(p), R, rng);
  }
});

test('linear: gradients of x, weight and bias', () => {
  const rng = new Rng(40);
  const [n, inF, outF] = [3, 7, 5];
  const x = param(rng, [n, inF]);
  const w = param(rng, [outF, inF]);
  const b = param(rng, [outF]);
  const y = ag.linear(x, w, b, { site: new BufferSite() });
  const R = randomFloat32(rng, y.size);
  y.backward(new Tensor(R, y.shape));
  const xs = toFloat64(x.data), ws = toFloat64(w.data), bs = toFloat64(b.data);
  fdCheck('linear d/dx', x, (p) => linearForwardRef(p, ws, bs, n, inF, outF).value, R, rng);
  fdCheck('linear d/dw', w, (p) => linearForwardRef(xs, p, bs, n, inF, outF).value, R, rng);
  fdCheck('linear d/db', b, (p) => linearForwardRef(xs, ws, p, n, inF, outF).value, R, rng);
});

test('add, sub, mul (same shape and scalar broadcast), scale, sum, mean', () => {
  const rng = new Rng(50);
  const shape = [2, 3, 4];
  const n = 24;
  const R = randomFloat32(rng, n);
  const seed = new Tensor(R, shape);
  type F = (a: Float64Array, b: Float64Array) => number[];
  const cases: { name: string; op: (a: Var, b: Var) => Var; f: F; bShape: number[] }[] = [
    { name: 'add', op: ag.add, f: (a, b) => Array.from(a, (v, i) => v + b[i]), bShape: shape },
    { name: 'sub', op: ag.sub, f: (a, b) => Array.from(a, (v, i) => v - b[i]), bShape: shape },
    { name: 'mul', op: ag.mul, f: (a, b) => Array.from(a, (v, i) => v * b[i]), bShape: shape },
    { name: 'add scalar', op: ag.add, f: (a, b) => Array.from(a, (v) => v + b[0]), bShape: [1] },
    { name: 'sub scalar', op: ag.sub, f: (a, b) => Array.from(a, (v) => v - b[0]), bShape: [1] },
    { name: 'mul scalar', op: ag.mul, f: (a, b) => Array.from(a, (v) => v * b[0]), bShape: [1] },
    { name: 'scalar sub', op: (a, b) => ag.sub(b, a), f: (a, b) => Array.from(a, (v) => b[0] - v), bShape: [1] },
  ];
  for (const c of cases) {
    const a = param(rng, shape);
    const b = param(rng, c.bShape);
    const y = c.op(a, b);
    assert.equal([...y.shape], shape, `${c.name}: shape`);
    assertClose(y.data, c.f(toFloat64(a.data), toFloat64(b.data)), (i) => 1e-6 * (1 + Math.abs(y.data[i])), `${c.name} forward`);
    y.backward(seed);
    const as = toFloat64(a.data), bs = toFloat64(b.data);
    fdCheck(`${c.name} d/da`, a, (p) => c.f(p, bs), R, rng);
    fdCheck(`${c.name} d/db`, b, (p) => c.f(as, p), R, rng);
  }
  const a = param(rng, shape);
  ag.scale(a, -2.5).backward(seed);
  fdCheck('scale d/da', a, (p) => Array.from(p, (v) => -2.5 * v), R, rng);
  for (const [name, op, f] of [
    ['sum', ag.sum, (p: Float64Array) => [p.reduce((s, v) => s + v, 0)]],
    ['mean', ag.mean, (p: Float64Array) => [p.reduce((s, v) => s + v, 0) / p.length]],
  ] as const) {
    const v = param(rng, shape);
    const y = op(v);
    assert.equal([...y.shape], [1]);
    assert.ok(Math.abs(y.item() - f(toFloat64(v.data))[0]) < 1e-5, `${name} value`);
    y.backward(); // default gradient 1 for a one-element Var
    fdCheck(`${name} d/dv`, v, f, [1], rng);
  }
});

test('reshape and flatten share the buffer and pass the gradient through', () => {
  const rng = new Rng(60);
  const x = param(rng, [2, 3, 2, 2]);
  const f = ag.flatten(x);
  assert.equal([...f.shape], [2, 12]);
  assert.ok(f.data === x.data, 'flatten copied the values');
  const r = ag.reshape(f, [-1, 4]);
  assert.equal([...r.shape], [6, 4]);
  const w = param(rng, [3, 4]);
  const y = ag.linear(r, w, null);
  const R = randomFloat32(rng, y.size);
  y.backward(new Tensor(R, y.shape));
  const ws = toFloat64(w.data);
  fdCheck('reshape/flatten d/dx', x, (p) => linearForwardRef(p, ws, null, 6, 4, 3).value, R, rng);
  assertFails(() => ag.reshape(x, [5, -1]), /divide 24/, 'reshape: impossible -1');
  assertFails(() => ag.reshape(x, [5, 5]), /25 elements/, 'reshape: wrong size');
  assertFails(() => ag.flatten(x, 4), /startDim/, 'flatten: startDim out of range');
});

test('customOp: gradients through ctx.out, through returned arrays, and size errors', () => {
  const rng = new Rng(70);
  const x = param(rng, [4, 5]);
  const y = param(rng, [4, 5]);
  // f(x, y) = x^2 y, element-wise.
  const viaCtx = (a: Var, b: Var) =>
    ag.customOp(
      [a, b],
      ([p, q]) => new Tensor(p.data.map((v, i) => v * v * q.data[i]), p.shape),
      (gy, ctx, [p, q]) => {
        if (ctx.needsGrad(0)) {
          const d = ctx.out(0).data;
          for (let i = 0; i < d.length; i++) d[i] = 2 * p.data[i] * q.data[i] * gy.data[i];
        }
        if (ctx.needsGrad(1)) {
          const d = ctx.out(1).data;
          for (let i = 0; i < d.length; i++) d[i] = p.data[i] * p.data[i] * gy.data[i];
        }
      },
      { name: 'x2y' },
    );
  const viaReturn = (a: Var, b: Var) =>
    ag.customOp(
      [a, b],
      ([p, q]) => new Tensor(p.data.map((v, i) => v * v * q.data[i]), p.shape),
      (gy, _ctx, [p, q]) => [
        new Tensor(p.data.map((v, i) => 2 * v * q.data[i] * gy.data[i]), p.shape),
        new Tensor(p.data.map((v, i) => v * v * gy.data[i]), p.shape),
      ],
    );
  const f = (p: Float64Array, q: Float64Array) => Array.from(p, (v, i) => v * v * q[i]);
  for (const [name, op] of [
    ['ctx.out', viaCtx],
    ['returned', viaReturn],
  ] as const) {
    zeroGrad([x, y]);
    const out = op(x, y);
    const R = randomFloat32(rng, out.size);
    out.backward(new Tensor(R, out.shape));
    const xs = toFloat64(x.data), ys = toFloat64(y.data);
    fdCheck(`customOp (${name}) d/dx`, x, (p) => f(p, ys), R, rng);
    fdCheck(`customOp (${name}) d/dy`, y, (p) => f(xs, p), R, rng);
  }
  const bad = ag.customOp([x], ([p]) => p, () => [new Tensor(new Float32Array(3), [3])], { name: 'bad' });
  assertFails(() => bad.backward(new Tensor(new Float32Array(20), [4, 5])), /input 0 of bad/, 'customOp: wrong gradient size');
});

// ---------------------------------------------------------------------------------------------
// Accumulation, noGrad, graph lifetime

test('a Var used several times gets the sum of its gradients', () => {
  const rng = new Rng(80);
  // y = x * x + x: dy/dx = 2x + 1 (the same Var as both inputs of mul, then again in add).
  const x = param(rng, [10]);
  const y = ag.add(ag.mul(x, x), x);
  const R = randomFloat32(rng, 10);
  y.backward(new Tensor(R, [10]));
  assertClose(x.grad!.data, Array.from(x.data, (v, i) => (2 * v + 1) * R[i]), (i) => 1e-5 * (1 + Math.abs(R[i])), 'd(x^2 + x)/dx');

  // add(v, v) where v is an intermediate Var: both uses accumulate into its pending gradient.
  const a = param(rng, [6]);
  const v = ag.scale(a, 3);
  ag.sum(ag.add(v, v)).backward();
  assertClose(a.grad!.data, new Array(6).fill(6), () => 1e-6, 'd sum(2 * 3a) / da');

  // A conv input feeding two convolutions and a linear layer's input twice.
  const g1 = convGeometry(1, 2, 5, 5, 3, [3, 3], [1, 1], [1, 1]);
  const g2 = convGeometry(1, 2, 5, 5, 2, [1, 1], [1, 1], [0, 0]);
  const img = param(rng, [1, 2, 5, 5]);
  const w1 = param(rng, [3, 2, 3, 3]);
  const w2 = param(rng, [2, 2, 1, 1]);
  const h = ag.absTanh(img); // an intermediate used twice
  const total = ag.add(ag.sum(ag.conv2d(h, w1, null, { padding: 1 })), ag.sum(ag.conv2d(h, w2, null)));
  total.backward();
  const w1s = toFloat64(w1.data), w2s = toFloat64(w2.data);
  fdCheck(
    'two convs of one input',
    img,
    (p) => {
      const t = absTanhRef(p);
      const s = (r: ArrayLike<number>) => Array.from(r).reduce((q, u) => q + u, 0);
      return [s(conv2dForwardRef(t, w1s, null, g1).value) + s(conv2dForwardRef(t, w2s, null, g2).value)];
    },
    [1],
    rng,
  );
});

test('parameter gradients accumulate across backward calls until zeroGrad', () => {
  const rng = new Rng(90);
  const w = param(rng, [4, 3]);
  const x = new Tensor(randomFloat32(rng, 6), [2, 3]);
  const run = () => ag.sum(ag.linear(x, w, null)).backward();
  run();
  const once = Float32Array.from(w.grad!.data);
  run();
  assertClose(w.grad!.data, Array.from(once, (v) => 2 * v), (i) => 1e-6 * (1 + Math.abs(once[i])), 'two backward calls');
  zeroGrad([w]);
  assert.is(w.grad, null, 'zeroGrad: grad reads null');
  run();
  assertClose(w.grad!.data, once, (i) => 1e-6 * (1 + Math.abs(once[i])), 'after zeroGrad the next backward overwrites');
});

test('noGrad records nothing; backward through such a Var is an error; the flag is restored', () => {
  const rng = new Rng(100);
  const w = param(rng, [3, 2, 3, 3]);
  const x = new Tensor(randomFloat32(rng, 2 * 2 * 6 * 6), [2, 2, 6, 6]);
  const y = noGrad(() => {
    assert.is(ag.isGradEnabled(), false);
    return ag.sigmoid(ag.maxPool2d(ag.absTanh(ag.conv2d(x, w, null, { padding: 1 })), { kernelSize: 2 }));
  });
  assert.is(ag.isGradEnabled(), true);
  assert.is(y.node, null, 'a node was recorded inside noGrad');
  assert.is(y.requiresGrad, false);
  const withGrad = ag.sigmoid(ag.maxPool2d(ag.absTanh(ag.conv2d(x, w, null, { padding: 1 })), { kernelSize: 2 }));
  assert.equal(Array.from(y.data), Array.from(withGrad.data), 'noGrad changes the values');
  assertFails(() => ag.sum(y).backward(), /computed without a graph/, 'backward of a noGrad result');
  try {
    noGrad(() => {
      throw new Error('inside');
    });
  } catch {
    // expected
  }
  assert.is(ag.isGradEnabled(), true, 'noGrad left recording off after a throw');
  // Inputs that need no gradient also give a plain Var.
  const plain = ag.absTanh(x);
  assert.is(plain.node, null);
});

test('backward frees the graph unless retainGraph; errors for bad seeds', () => {
  const rng = new Rng(110);
  const w = param(rng, [3, 4]);
  const x = new Tensor(randomFloat32(rng, 8), [2, 4]);
  const y = ag.linear(x, w, null);
  const loss = ag.sum(ag.sigmoid(y));
  loss.backward(undefined, { retainGraph: true });
  const once = Float32Array.from(w.grad!.data);
  loss.backward();
  assertClose(w.grad!.data, Array.from(once, (v) => 2 * v), (i) => 1e-6 * (1 + Math.abs(once[i])), 'retainGraph: second backward adds');
  try {
    loss.backward();
    assert.unreachable('a third backward through a freed graph passed');
  } catch (e) {
    assert.ok(e instanceof DclError && e.code === 'E_ARG' && /already back-propagated/.test(e.message), String(e));
  }
  const y2 = ag.linear(x, w, null);
  assertFails(() => y2.backward(), /only a one-element Var has the default gradient/, 'non-scalar without a gradient');
  assertFails(() => y2.backward(new Tensor(new Float32Array(6), [3, 2])), /Expected a gradient of shape \[2, 3\]/, 'gradient of the wrong shape');
  assertFails(() => ag.add(w, new Tensor(new Float32Array(5), [5])), /one shape/, 'add of mismatched shapes');
  assertFails(() => ag.conv2d({} as Var, w, null), /Expected a Var or a Tensor for x/, 'conv2d of a non-tensor');
});

test('gradients the caller holds (the seed, retained gradients) are never recycled or written', () => {
  const rng = new Rng(115);
  const w = param(rng, [3, 4]);
  const x = new Tensor(randomFloat32(rng, 8), [2, 4]);
  const seedValues = randomFloat32(rng, 6);
  const seed = new Tensor(seedValues.slice(), [2, 3]);
  const h = ag.linear(x, w, null).retainGrad();
  ag.sigmoid(h).backward(seed);
  const retained = Float32Array.from(h.grad!.data);
  const y = ag.sigmoid(h);
  assertClose(retained, Array.from(seedValues, (g, i) => g * y.data[i] * (1 - y.data[i])), () => 1e-6, 'retained gradient of h');
  // More steps of the same shapes take scratch arrays of the same sizes.
  for (let i = 0; i < 3; i++) ag.sigmoid(ag.linear(x, w, null)).backward(new Tensor(randomFloat32(rng, 6), [2, 3]));
  assert.equal(Array.from(seed.data), Array.from(seedValues), 'the seed was recycled');
  assert.equal(Array.from(h.grad!.data), Array.from(retained), 'a retained gradient was recycled');
});

// ---------------------------------------------------------------------------------------------
// Kept buffers

test('kept buffers: reused across steps, a second use in one step gets its own, stale reads throw', () => {
  const rng = new Rng(120);
  const site = new BufferSite();
  const w = param(rng, [2, 1, 3, 3]);
  const x1 = new Tensor(randomFloat32(rng, 36), [1, 1, 6, 6]);
  const x2 = new Tensor(randomFloat32(rng, 36), [1, 1, 6, 6]);
  const g = convGeometry(1, 1, 6, 6, 2, [3, 3], [1, 1], [1, 1]);

  // Siamese use: the same site twice in one step must not overwrite the first output.
  const y1 = ag.conv2d(x1, w, null, { padding: 1, site });
  const y2 = ag.conv2d(x2, w, null, { padding: 1, site });
  assert.ok(y1.data !== y2.data, 'one step got the same buffer twice');
  assert.is(site.count, 2);
  const loss = ag.sum(ag.mul(y1, y2));
  loss.backward();
  fdCheck(
    'siamese conv d/dw',
    w,
    (p) => {
      const a = conv2dForwardRef(x1.data, p, null, g).value;
      const b = conv2dForwardRef(x2.data, p, null, g).value;
      return [a.reduce((s, v, i) => s + v * b[i], 0)];
    },
    [1],
    rng,
  );
  // Still readable after backward; the next step reuses the buffers (no new ones).
  assert.ok(Number.isFinite(y1.data[0]));
  const z1 = ag.conv2d(x1, w, null, { padding: 1, site });
  assert.is(site.count, 2, 'a new buffer was kept although the old ones are free');
  assert.ok(z1.data === y1._value.data, 'the first free buffer was not reused');
  assertFails(() => y1.value, /buffer a later forward pass reused/, 'reading a reused value');
  // backward through a graph whose buffers were reused by a later step is an error, not garbage.
  const a = ag.conv2d(x1, w, null, { padding: 1, site });
  ag.endStep();
  ag.conv2d(x2, w, null, { padding: 1, site });
  ag.conv2d(x2, w, null, { padding: 1, site });
  assertFails(() => ag.sum(a).backward(), /reused/, 'backward through reused buffers');
  ag.endStep();
});

test('inference(): a loop of noGrad forwards reuses one buffer per layer; each result valid until the next call', () => {
  const rng = new Rng(125);
  const site = new BufferSite();
  const w = param(rng, [2, 1, 3, 3]);
  const x = new Tensor(randomFloat32(rng, 36), [1, 1, 6, 6]);
  let last: Var | null = null;
  for (let i = 0; i < 6; i++) {
    const y = ag.inference(() => ag.conv2d(x, w, null, { padding: 1, site }));
    assert.is(y.node, null);
    assert.ok(Number.isFinite(y.data[0]), 'the result is readable until the next call');
    if (last) assertFails(() => last!.value, /reused/, 'the previous result was overwritten');
    last = y;
  }
  assert.is(site.count, 1, 'inference() kept more than one buffer');
  // Plain noGrad without endStep stays correct: distinct buffers (up to maxSlots, then unkept ones).
  const a = noGrad(() => ag.conv2d(x, w, null, { padding: 1, site }));
  const b = noGrad(() => ag.conv2d(x, w, null, { padding: 1, site }));
  assert.ok(a.data !== b.data && Number.isFinite(a.data[0]));
  ag.endStep();
});

test('a training step allocates nothing new once warm (kept buffers and scratch pool stable)', () => {
  const rng = new Rng(130);
  const sites = [new BufferSite(), new BufferSite(), new BufferSite(), new BufferSite(), new BufferSite()];
  const w = param(rng, [4, 2, 3, 3]);
  const v = param(rng, [3, 4 * 3 * 3]);
  const x = new Tensor(randomFloat32(rng, 2 * 2 * 6 * 6), [2, 2, 6, 6]);
  const step = () => {
    zeroGrad([w, v]);
    const h = ag.maxPool2d(ag.absTanh(ag.conv2d(x, w, null, { padding: 1, site: sites[0] }), { site: sites[1] }), { kernelSize: 2, site: sites[2] });
    const out = ag.sigmoid(ag.linear(ag.flatten(h), v, null, { site: sites[3] }), { site: sites[4] });
    ag.sum(out).backward();
  };
  step();
  step();
  const kept = sites.map((s) => s.bytes);
  const scratch = ag.scratchBytes();
  const gradArrays = [w.grad!.data, v.grad!.data];
  for (let i = 0; i < 5; i++) step();
  assert.equal(sites.map((s) => s.bytes), kept, 'kept buffers grew');
  assert.is(ag.scratchBytes(), scratch, 'the scratch pool changed size');
  assert.ok(w.grad!.data === gradArrays[0] && v.grad!.data === gradArrays[1], 'parameter gradient arrays were reallocated');
});

test('varying batch sizes: one kept buffer per layer output (grown to the largest batch), a bounded scratch pool', () => {
  const rng = new Rng(135);
  const sites = Array.from({ length: 5 }, () => new BufferSite());
  const w = param(rng, [4, 2, 3, 3]);
  const v = param(rng, [3, 4 * 3 * 3]);
  const images = randomFloat32(rng, 8 * 2 * 6 * 6);
  const step = (n: number) => {
    zeroGrad([w, v]);
    const x = new Tensor(images.subarray(0, n * 72), [n, 2, 6, 6]);
    const h = ag.maxPool2d(ag.absTanh(ag.conv2d(x, w, null, { padding: 1, site: sites[0] }), { site: sites[1] }), { kernelSize: 2, site: sites[2] });
    const out = ag.sigmoid(ag.linear(ag.flatten(h), v, null, { site: sites[3] }), { site: sites[4] });
    assert.equal([...out.shape], [n, 3]);
    ag.sum(out).backward();
    return Float32Array.from(w.grad!.data);
  };
  const reference = step(3); // gradients of a batch of 3 with fresh buffers
  step(8);
  step(8);
  const kept = sites.map((s) => s.bytes);
  const counts = sites.map((s) => s.count);
  const full = ag.scratchBytes();
  let most = 0;
  for (const n of [3, 1, 7, 2, 8, 5, 5, 4, 6, 1, 8, 2, 3]) {
    const g = step(n);
    if (n === 3) assertSame(g, reference, 'batch of 3 in a larger buffer');
    most = Math.max(most, ag.scratchBytes());
  }
  assert.equal(sites.map((s) => s.bytes), kept, 'kept buffers grew below the largest batch');
  assert.equal(sites.map((s) => s.count), counts, 'more buffers kept');
  assert.ok(most <= 4 * full, `scratch pool grew to ${most} bytes (${full} at batch 8)`);
  for (let i = 0; i < 4; i++) step(8);
  assert.ok(ag.scratchBytes() <= full, `scratch pool not trimmed back: ${ag.scratchBytes()} > ${full}`);
});

// ---------------------------------------------------------------------------------------------
// A whole tiny network

test('tiny network conv -> pool -> |tanh| -> linear -> sigmoid: every gradient against finite differences, on every ISA', () => {
  forEachIsa(() => tinyNetwork(new Rng(140)));
});

function tinyNetwork(rng: Rng): void {
  const [n, cin, hw, cout, outF] = [2, 2, 8, 3, 5];
  const gc = convGeometry(n, cin, hw, hw, cout, [3, 3], [1, 1], [1, 1]);
  const gp = poolGeometry(n, cout, hw, hw, [2, 2], [2, 2]);
  const inF = cout * 4 * 4;
  const x = param(rng, [n, cin, hw, hw]);
  const cw = param(rng, [cout, cin, 3, 3], -0.6, 0.6);
  const cb = param(rng, [cout], -0.2, 0.2);
  const lw = param(rng, [outF, inF], -0.4, 0.4);
  const lb = param(rng, [outF], -0.2, 0.2);
  const sites = Array.from({ length: 5 }, () => new BufferSite());
  const conv = ag.conv2d(x, cw, cb, { padding: 1, site: sites[0] });
  const pool = ag.maxPool2d(conv, { kernelSize: 2, site: sites[1] });
  const act = ag.absTanh(pool, { site: sites[2] });
  const out = ag.sigmoid(ag.linear(ag.flatten(act), lw, lb, { site: sites[3] }), { site: sites[4] });
  assert.equal([...out.shape], [n, outF]);

  // The float64 forward with the pool's winners fixed at the float32 run's (checked equal to the
  // float64 winners first, so the point is not at a tie).
  const ref64 = conv2dForwardRef(x.data, cw.data, cb.data, gc).value;
  const winners = maxPool2dForwardRef(ref64, gp).argmax;
  const winners32 = maxPool2dForwardRef(conv.data, gp).argmax;
  assert.equal(Array.from(winners), Array.from(winners32), 'float32 and float64 pool winners differ (a near tie): pick another seed');
  const forward = (xs: ArrayLike<number>, cws: ArrayLike<number>, cbs: ArrayLike<number>, lws: ArrayLike<number>, lbs: ArrayLike<number>) => {
    const c = conv2dForwardRef(xs, cws, cbs, gc).value;
    const a = absTanhRef(pooled(c, winners, gp));
    return sigmoidRef(linearForwardRef(a, lws, lbs, n, inF, outF).value);
  };
  assertClose(out.data, forward(x.data, cw.data, cb.data, lw.data, lb.data), () => 1e-5, 'tiny network forward');

  const R = randomFloat32(rng, out.size);
  out.backward(new Tensor(R, out.shape));
  const [X, CW, CB, LW, LB] = [x, cw, cb, lw, lb].map((v) => toFloat64(v.data));
  fdCheck('tiny net d/dx', x, (p) => forward(p, CW, CB, LW, LB), R, rng);
  fdCheck('tiny net d/dconv.weight', cw, (p) => forward(X, p, CB, LW, LB), R, rng);
  fdCheck('tiny net d/dconv.bias', cb, (p) => forward(X, CW, p, LW, LB), R, rng);
  fdCheck('tiny net d/dfc.weight', lw, (p) => forward(X, CW, CB, p, LB), R, rng);
  fdCheck('tiny net d/dfc.bias', lb, (p) => forward(X, CW, CB, LW, p), R, rng);
}

test('profiling reports each op once per call', () => {
  const rng = new Rng(150);
  const w = param(rng, [2, 1, 3, 3]);
  const x = new Tensor(randomFloat32(rng, 64), [1, 1, 8, 8]);
  ag.startProfiling();
  ag.sum(ag.absTanh(ag.conv2d(x, w, null))).backward();
  const report = ag.stopProfiling();
  const byOp = new Map(report.map((r) => [r.op, r]));
  assert.is(byOp.get('conv2d')?.forwardCalls, 1);
  assert.is(byOp.get('conv2d')?.backwardCalls, 1);
  assert.is(byOp.get('absTanh')?.backwardCalls, 1);
  assert.ok(report.every((r) => r.forwardMs >= 0 && r.backwardMs >= 0));
});

test.run();
