// The native Adam / AdamW update (native/cpu/adam_*.cpp, native.adamUpdate, used by lib/optim.ts
// Adam / AdamW) on every ISA path: bit-identical to a TypeScript emulation of the serial kernel's
// float32 operations (Math.fround after each one; float64 rounding of a float32 +, -, *, / or sqrt
// and then to float32 is the correctly rounded float32 result), so every ISA matches serial
// exactly -- the SIMD files switch FMA contraction off; and within a derived error bound of the
// formula evaluated in float64 with float64 state (torch.optim.AdamW's definition).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { AdamW, autograd as ag, Tensor, Var, zeroGrad } from '../lib/index.js';
import { native } from '../lib/native.js';
import { Rng, U32 } from './reference.js';
import { assertClose, assertSame, embed, forEachIsa, guardedOutput } from './helpers.js';

const test = suite('adam-kernel');

const SIZES = [1, 7, 15, 16, 17, 33, 1000, 100003];
const STEPS = 4;

interface Hyper {
  lr: number;
  b1: number;
  b2: number;
  eps: number;
  wd: number;
}

const CASES: Hyper[] = [
  { lr: 1e-3, b1: 0.9, b2: 0.999, eps: 1e-8, wd: 0 },
  { lr: 0.05, b1: 0.9, b2: 0.999, eps: 1e-8, wd: 0.01 },
  { lr: 0.1, b1: 0.8, b2: 0.95, eps: 1e-6, wd: 0.3 },
];

const f = Math.fround;

/** The serial kernel's float32 operations, one by one (adam_serial.cpp), at update t. */
function adamRef32(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, h: Hyper, t: number): void {
  const decay = f(1 - h.lr * h.wd);
  const b1 = f(h.b1), c1 = f(1 - h.b1), b2 = f(h.b2), c2 = f(1 - h.b2);
  const step = f(h.lr / (1 - h.b1 ** t));
  const bc2 = f(Math.sqrt(1 - h.b2 ** t));
  const eps = f(h.eps);
  for (let i = 0; i < p.length; i++) {
    const gi = g[i];
    const pi = f(p[i] * decay);
    const mi = f(f(b1 * m[i]) + f(c1 * gi));
    const vi = f(f(b2 * v[i]) + f(c2 * f(gi * gi)));
    m[i] = mi;
    v[i] = vi;
    const denom = f(f(f(Math.sqrt(vi)) / bc2) + eps);
    p[i] = f(pi - f(step * f(mi / denom)));
  }
}

/**
 * The formula in float64 with float64 state, and per element a bound on how far a float32
 * evaluation can be from it (first-order propagation of one rounding, u = 2^-24, per float32
 * operation and constant; the assertion allows twice the bound).
 */
class Ref64 {
  readonly p: Float64Array;
  readonly m: Float64Array;
  readonly v: Float64Array;
  readonly errP: Float64Array;
  readonly errM: Float64Array;
  readonly errV: Float64Array;
  constructor(p: Float32Array) {
    const n = p.length;
    this.p = Float64Array.from(p);
    this.m = new Float64Array(n);
    this.v = new Float64Array(n);
    this.errP = new Float64Array(n);
    this.errM = new Float64Array(n);
    this.errV = new Float64Array(n);
  }
  step(g: Float32Array, h: Hyper, t: number): void {
    const { p, m, v, errP, errM, errV } = this;
    const decay = 1 - h.lr * h.wd;
    const step = h.lr / (1 - h.b1 ** t);
    const bc2 = Math.sqrt(1 - h.b2 ** t);
    const u = U32;
    for (let i = 0; i < p.length; i++) {
      const gi = g[i];
      const pd = p[i] * decay;
      const mi = h.b1 * m[i] + (1 - h.b1) * gi;
      const vi = h.b2 * v[i] + (1 - h.b2) * gi * gi;
      errM[i] = h.b1 * errM[i] + 4 * u * (h.b1 * Math.abs(m[i]) + (1 - h.b1) * Math.abs(gi));
      errV[i] = h.b2 * errV[i] + 6 * u * vi;
      const root = Math.sqrt(vi) / bc2;
      const denom = root + h.eps;
      // Relative error of denom: half that of v through the sqrt, plus its own roundings.
      const relD = (vi > 0 ? errV[i] / (2 * vi) : 0) * (root / denom) + 4 * u;
      const upd = (step * mi) / denom;
      const errU = (step * errM[i]) / denom + Math.abs(upd) * (relD + 4 * u);
      const pn = pd - upd;
      errP[i] = Math.abs(decay) * errP[i] + 2 * u * Math.abs(pd) + errU + u * Math.abs(pn);
      m[i] = mi;
      v[i] = vi;
      p[i] = pn;
    }
  }
}

function gradients(rng: Rng, n: number): Float32Array {
  const g = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const r = rng.float();
    // Exact zeros, tiny values (where eps matters), ordinary and large ones.
    g[i] = r < 0.1 ? 0 : r < 0.2 ? rng.uniform(-1e-7, 1e-7) : r < 0.9 ? rng.uniform(-1, 1) : rng.uniform(-50, 50);
  }
  return g;
}

/** A guarded in/out buffer holding `values` (writes outside it are caught by intact()). */
function inOut(values: Float32Array, offset: number): { view: Float32Array; intact: (label: string) => void } {
  const out = guardedOutput(values.length, offset);
  out.view.set(values);
  return out;
}

test('every ISA: bit-identical to the float32 emulation of the serial kernel, near the float64 formula', () => {
  SIZES.forEach((n, si) => {
    CASES.forEach((h, ci) => {
      const rng = new Rng(1000 + 31 * si + ci);
      const p0 = new Float32Array(n);
      for (let i = 0; i < n; i++) p0[i] = rng.uniform(-2, 2);
      const grads = Array.from({ length: STEPS }, () => gradients(rng, n));
      // Expected: the emulation (float32) and the float64 formula.
      const pe = new Float32Array(p0), me = new Float32Array(n), ve = new Float32Array(n);
      const r64 = new Ref64(p0);
      const want: Float32Array[][] = [];
      for (let t = 1; t <= STEPS; t++) {
        adamRef32(pe, grads[t - 1], me, ve, h, t);
        r64.step(grads[t - 1], h, t);
        want.push([new Float32Array(pe), new Float32Array(me), new Float32Array(ve)]);
      }
      const label = `n ${n}, case ${ci}`;
      // The emulation against float64, with the derived bound (x2).
      assertClose(pe, r64.p, (i) => 2 * r64.errP[i] + 1e-30, `${label}: float32 emulation vs float64 p`);
      assertClose(me, r64.m, (i) => 2 * r64.errM[i] + 1e-30, `${label}: float32 emulation vs float64 m`);
      assertClose(ve, r64.v, (i) => 2 * r64.errV[i] + 1e-30, `${label}: float32 emulation vs float64 v`);
      forEachIsa((isa) => {
        const offset = 1 + ((si + ci) % 13);
        const p = inOut(p0, offset), m = inOut(new Float32Array(n), offset + 1), v = inOut(new Float32Array(n), offset + 2);
        for (let t = 1; t <= STEPS; t++) {
          const g = embed(grads[t - 1], offset + 3);
          native.adamUpdate(p.view, g, m.view, v.view, h.lr, h.b1, h.b2, h.eps, h.wd, 1 - h.b1 ** t, Math.sqrt(1 - h.b2 ** t));
          const [wp, wm, wv] = want[t - 1];
          assertSame(p.view, wp, `${isa} ${label} step ${t}: param`);
          assertSame(m.view, wm, `${isa} ${label} step ${t}: m`);
          assertSame(v.view, wv, `${isa} ${label} step ${t}: v`);
        }
        p.intact(`${isa} ${label}: param`);
        m.intact(`${isa} ${label}: m`);
        v.intact(`${isa} ${label}: v`);
      });
    });
  });
});

test('every ISA: AdamW.step runs the kernel (param and moments as the emulation, over groups of several sizes)', () => {
  const h: Hyper = { lr: 0.02, b1: 0.9, b2: 0.999, eps: 1e-8, wd: 0.01 };
  forEachIsa((isa) => {
    const rng = new Rng(77);
    const sizes = [5, 40000];
    const vars = sizes.map((n) => {
      const x = new Float32Array(n);
      for (let i = 0; i < n; i++) x[i] = rng.uniform(-1, 1);
      return Var.from(x, [n], { requiresGrad: true });
    });
    const exp = vars.map((x) => ({ p: new Float32Array(x.data), m: new Float32Array(x.size), v: new Float32Array(x.size) }));
    const opt = new AdamW(vars, { lr: h.lr, weightDecay: h.wd });
    for (let t = 1; t <= 3; t++) {
      vars.forEach((x, k) => {
        const g = gradients(rng, x.size);
        // x.grad = g exactly, through the backward of sum(x * g).
        zeroGrad([x]);
        ag.sum(ag.mul(x, Tensor.from(g, [x.size]))).backward();
        assertSame(x.grad!.data, g, 'gradient set');
        adamRef32(exp[k].p, g, exp[k].m, exp[k].v, h, t);
      });
      opt.step();
    }
    const state = opt.stateDict();
    vars.forEach((x, k) => {
      assertSame(x.data, exp[k].p, `${isa} param ${k}`);
      assertSame(state.params[k]!.buffers.m, exp[k].m, `${isa} m ${k}`);
      assertSame(state.params[k]!.buffers.v, exp[k].v, `${isa} v ${k}`);
      assert.is(state.params[k]!.step, 3);
    });
  });
});

test('adamUpdate rejects arrays of different lengths', () => {
  const a = new Float32Array(4), b = new Float32Array(3);
  assert.throws(() => native.adamUpdate(a, b, a, a, 0.1, 0.9, 0.999, 1e-8, 0, 0.1, 0.03), /wrong length/);
});

test.run();
