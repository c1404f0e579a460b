// Winograd F(2x2, 3x3) for 3x3, stride-1, padding-1 layers on the SIMD paths: forward,
// backward-input and backward-weight (+ bias) with the conv algorithm forced to 'winograd' and to
// 'direct', against the float64 reference (the tolerance of conv2d.test.ts) and against the serial
// direct kernel (max error within 1e-4 of the largest magnitude). Shapes are awkward on purpose:
// odd and even, non-square and tiny images (partial edge tiles, a 1x1 image inside one tile),
// channel counts on either side of the 8- and 16-lane vectors, batches whose tiles straddle block
// and chunk boundaries, and the exact DCL-S layers. Also: 'auto' takes Winograd exactly where it
// applies (bit patterns against each forced algorithm), the setting round-trips and rejects bad
// names, DCL_CONV_ALGO is honoured, and results do not depend on the thread count.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  capabilities,
  conv2d,
  conv2dBackwardInput,
  conv2dBackwardWeight,
  convAlgorithm,
  DclError,
  setConvAlgorithm,
  setThreads,
  Tensor,
  withIsa,
} from '../lib/index.js';
import type { ConvAlgorithm } from '../lib/index.js';
import { applyEnvironment } from '../lib/runtime.js';
import {
  conv2dBackwardInputRef,
  conv2dBackwardWeightRef,
  conv2dForwardRef,
  convGeometry,
  randomFloat32,
  Rng,
  type ConvGeometry,
  type Pair,
} from './reference.js';
import { assertClose, assertSame, embed, forEachIsa, nchw, sumTolerance } from './helpers.js';

const test = suite('winograd');

/** Largest error against the serial direct kernel, relative to the largest magnitude of its result. */
const SERIAL_RTOL = 1e-4;

/** Runs fn with the conv algorithm set, restoring the previous one afterwards. */
function withAlgorithm<T>(algorithm: ConvAlgorithm, fn: () => T): T {
  const previous = convAlgorithm();
  setConvAlgorithm(algorithm);
  try {
    return fn();
  } finally {
    setConvAlgorithm(previous);
  }
}

interface Case {
  n: number;
  cin: number;
  h: number;
  w: number;
  cout: number;
  bias: boolean;
}

const k3: Pair = [3, 3];
const s1: Pair = [1, 1];
const p1: Pair = [1, 1];

interface Inputs {
  g: ConvGeometry;
  X: Tensor;
  W: Tensor;
  B: Tensor | null;
  DY: Tensor;
  x: Float32Array;
  w: Float32Array;
  b: Float32Array | null;
  dy: Float32Array;
}

function inputs(cc: Case, seed: number, unaligned: boolean): Inputs {
  const rng = new Rng(seed);
  const g = convGeometry(cc.n, cc.cin, cc.h, cc.w, cc.cout, k3, s1, p1);
  const x = randomFloat32(rng, g.n * g.cin * g.h * g.w);
  const w = randomFloat32(rng, g.cout * g.cin * 9);
  const b = cc.bias ? randomFloat32(rng, g.cout) : null;
  const dy = randomFloat32(rng, g.n * g.cout * g.oh * g.ow);
  // Unaligned views inside NaN-filled buffers: a read outside a tensor reaches a result as NaN.
  const place = (a: Float32Array) => (unaligned ? embed(a, 1 + (seed % 15)) : new Float32Array(a));
  return {
    g,
    x,
    w,
    b,
    dy,
    X: new Tensor(place(x), [g.n, g.cin, g.h, g.w]),
    W: new Tensor(place(w), [g.cout, g.cin, 3, 3]),
    B: b ? new Tensor(place(b), [g.cout]) : null,
    DY: new Tensor(place(dy), [g.n, g.cout, g.oh, g.ow]),
  };
}

interface Results {
  y: Float32Array;
  dx: Float32Array;
  dw: Float32Array;
  db: Float32Array | null;
}

function runAll(t: Inputs, bias: boolean): Results {
  const opts = { padding: 1 };
  const y = conv2d(t.X, t.W, t.B, opts).data;
  const dx = conv2dBackwardInput(t.DY, t.W, [t.g.n, t.g.cin, t.g.h, t.g.w], opts).data;
  const grads = conv2dBackwardWeight(t.X, t.DY, { kernelSize: 3, ...opts, ...(bias ? {} : { bias: false }) });
  return { y, dx, dw: grads.weight.data, db: grads.bias ? grads.bias.data : null };
}

function describeCase(cc: Case): string {
  return `x[${cc.n},${cc.cin},${cc.h},${cc.w}] w[${cc.cout},${cc.cin},3,3]${cc.bias ? ' +bias' : ''}`;
}

/** max |got - want| <= rtol * max |want|. */
function assertCloseToMax(got: Float32Array, want: Float32Array, rtol: number, label: string): void {
  assert.is(got.length, want.length, `${label}: length`);
  let scale = 0;
  let worst = 0;
  let at = -1;
  for (let i = 0; i < want.length; i++) {
    scale = Math.max(scale, Math.abs(want[i]));
    const e = Math.abs(got[i] - want[i]);
    if (!(e <= worst)) {
      worst = e;
      at = i;
    }
  }
  if (!(worst <= rtol * scale))
    assert.unreachable(`${label}: max error ${worst} at [${at}] is ${(worst / scale).toExponential(2)} of the largest magnitude ${scale} (limit ${rtol})`);
}

/** Every direction of one case on every SIMD ISA and both algorithms, against the references. */
function checkCase(cc: Case, seed: number): void {
  const t = inputs(cc, seed, seed % 2 === 1);
  const label = describeCase(cc);
  const { g } = t;
  const refY = conv2dForwardRef(t.x, t.w, t.b, g);
  const refDx = conv2dBackwardInputRef(t.dy, t.w, g);
  const refDw = conv2dBackwardWeightRef(t.x, t.dy, g);
  const serial = withIsa('serial', () => runAll(t, cc.bias));
  for (const algorithm of ['winograd', 'direct'] as const) {
    withAlgorithm(algorithm, () =>
      forEachIsa((isa) => {
        if (isa === 'serial') return;
        const r = runAll(t, cc.bias);
        const where = `${algorithm} ${label}`;
        assertClose(r.y, refY.value, sumTolerance(refY), `forward ${where}`, nchw([g.n, g.cout, g.oh, g.ow]));
        assertClose(r.dx, refDx.value, sumTolerance(refDx), `backward input ${where}`, nchw([g.n, g.cin, g.h, g.w]));
        assertClose(r.dw, refDw.weight.value, sumTolerance(refDw.weight), `backward weight ${where}`, nchw([g.cout, g.cin, 3, 3]));
        assertCloseToMax(r.y, serial.y, SERIAL_RTOL, `forward vs serial ${where}`);
        assertCloseToMax(r.dx, serial.dx, SERIAL_RTOL, `backward input vs serial ${where}`);
        assertCloseToMax(r.dw, serial.dw, SERIAL_RTOL, `backward weight vs serial ${where}`);
        if (cc.bias) {
          assert.ok(r.db && serial.db, `${where}: bias gradient missing`);
          assertClose(r.db!, refDw.bias.value, sumTolerance(refDw.bias), `bias gradient ${where}`);
          assertCloseToMax(r.db!, serial.db!, SERIAL_RTOL, `bias gradient vs serial ${where}`);
        } else {
          assert.is(r.db, null, `${where}: bias: false must give no bias gradient`);
        }
      }),
    );
  }
}

const c = (n: number, cin: number, h: number, w: number, cout: number, bias = true): Case => ({ n, cin, h, w, cout, bias });

const AWKWARD: Case[] = [
  // Tiny images: one (partial) tile per image.
  c(1, 8, 1, 1, 8),
  c(2, 9, 2, 3, 17),
  c(3, 17, 3, 3, 8, false),
  c(5, 8, 1, 2, 9),
  // Odd / even, non-square.
  c(1, 31, 33, 17, 9),
  c(2, 17, 17, 33, 31, false),
  c(3, 9, 7, 6, 64),
  c(5, 64, 5, 9, 17),
  c(2, 8, 6, 10, 8),
  c(1, 64, 12, 5, 64, false),
  c(3, 31, 4, 4, 31),
  // Enough tiles for several blocks and backward-weight chunks.
  c(5, 17, 33, 17, 9),
  c(2, 9, 40, 38, 8),
];

for (const [i, cc] of AWKWARD.entries())
  test(`awkward shape ${describeCase(cc)}`, () => {
    checkCase(cc, 100 + i);
  });

// The exact layers of DCL-S (conv2 .. conv4), at a small batch.
const DCL_S: Case[] = [c(2, 32, 32, 32, 64), c(2, 64, 16, 16, 128), c(3, 128, 8, 8, 256)];
for (const [i, cc] of DCL_S.entries())
  test(`DCL-S layer ${describeCase(cc)}`, () => {
    checkCase(cc, 200 + i);
  });

function bitsOf(r: Results): Float32Array[] {
  return r.db ? [r.y, r.dx, r.dw, r.db] : [r.y, r.dx, r.dw];
}

function sameBits(a: Results, b: Results): boolean {
  const pa = bitsOf(a);
  const pb = bitsOf(b);
  for (let k = 0; k < pa.length; k++) {
    const u = new Uint32Array(pa[k].buffer, pa[k].byteOffset, pa[k].length);
    const v = new Uint32Array(pb[k].buffer, pb[k].byteOffset, pb[k].length);
    if (u.length !== v.length) return false;
    for (let i = 0; i < u.length; i++) if (u[i] !== v[i]) return false;
  }
  return true;
}

/** Runs a general conv (any kernel / stride / padding) in every direction. */
function runGeneral(n: number, cin: number, h: number, w: number, cout: number, k: number, s: number, p: number, seed: number): () => Results {
  const rng = new Rng(seed);
  const g = convGeometry(n, cin, h, w, cout, [k, k], [s, s], [p, p]);
  const X = new Tensor(randomFloat32(rng, n * cin * h * w), [n, cin, h, w]);
  const W = new Tensor(randomFloat32(rng, cout * cin * k * k), [cout, cin, k, k]);
  const B = new Tensor(randomFloat32(rng, cout), [cout]);
  const DY = new Tensor(randomFloat32(rng, n * cout * g.oh * g.ow), [n, cout, g.oh, g.ow]);
  return () => {
    const opts = { stride: s, padding: p };
    const grads = conv2dBackwardWeight(X, DY, { kernelSize: k, ...opts });
    return {
      y: conv2d(X, W, B, opts).data,
      dx: conv2dBackwardInput(DY, W, [n, cin, h, w], opts).data,
      dw: grads.weight.data,
      db: grads.bias ? grads.bias.data : null,
    };
  };
}

test("'auto' runs Winograd exactly where it applies (3x3, stride 1, padding 1, >= 8 channels each way)", () => {
  const cases: { shape: Parameters<typeof runGeneral>; winograd: boolean; label: string }[] = [
    { shape: [2, 8, 9, 7, 8, 3, 1, 1, 1], winograd: true, label: '3x3 s1 p1, 8 -> 8' },
    { shape: [1, 32, 16, 16, 64, 3, 1, 1, 2], winograd: true, label: '3x3 s1 p1, 32 -> 64' },
    { shape: [2, 7, 9, 7, 16, 3, 1, 1, 3], winograd: false, label: '3x3 s1 p1, 7 input channels' },
    { shape: [2, 16, 9, 7, 7, 3, 1, 1, 4], winograd: false, label: '3x3 s1 p1, 7 output channels' },
    { shape: [2, 16, 9, 8, 16, 3, 2, 1, 5], winograd: false, label: '3x3 stride 2' },
    { shape: [2, 16, 9, 8, 16, 3, 1, 0, 6], winograd: false, label: '3x3 padding 0' },
    { shape: [2, 16, 9, 8, 16, 5, 1, 1, 7], winograd: false, label: '5x5' },
  ];
  for (const cs of cases) {
    const run = runGeneral(...cs.shape);
    forEachIsa((isa) => {
      const auto = withAlgorithm('auto', run);
      const direct = withAlgorithm('direct', run);
      const winograd = withAlgorithm('winograd', run);
      if (isa === 'serial') {
        // serial always runs the direct convolution.
        assert.ok(sameBits(auto, direct) && sameBits(winograd, direct), `serial ${cs.label}: the setting must not matter`);
        return;
      }
      const applies = cs.shape[5] === 3 && cs.shape[6] === 1 && cs.shape[7] === 1;
      if (cs.winograd) {
        assert.ok(sameBits(auto, winograd), `${cs.label}: auto must match forced winograd bit for bit`);
        assert.not.ok(sameBits(auto, direct), `${cs.label}: auto must differ from direct (it ran Winograd)`);
      } else {
        assert.ok(sameBits(auto, direct), `${cs.label}: auto must match direct bit for bit`);
        // Forced 'winograd' still needs the geometry; channel counts do not stop it.
        if (applies) assert.not.ok(sameBits(winograd, direct), `${cs.label}: forced winograd must run Winograd`);
        else assert.ok(sameBits(winograd, direct), `${cs.label}: forced winograd must fall back to direct`);
      }
    });
  }
});

test('the setting round-trips, defaults to auto and rejects bad names with E_ARG', () => {
  assert.is(convAlgorithm(), process.env.DCL_CONV_ALGO || 'auto');
  const previous = convAlgorithm();
  try {
    for (const a of ['direct', 'winograd', 'auto'] as const) {
      setConvAlgorithm(a);
      assert.is(convAlgorithm(), a);
    }
    setConvAlgorithm('winograd');
    for (const bad of ['Winograd', 'fft', '', 3, null, undefined]) {
      assert.throws(
        () => setConvAlgorithm(bad as never),
        (e: unknown) => e instanceof DclError && e.code === 'E_ARG',
        `setConvAlgorithm(${String(bad)})`,
      );
      assert.is(convAlgorithm(), 'winograd', 'a rejected name must leave the setting alone');
    }
  } finally {
    setConvAlgorithm(previous);
  }
});

test('DCL_CONV_ALGO is honoured and validated', () => {
  const previous = convAlgorithm();
  try {
    applyEnvironment({ DCL_CONV_ALGO: 'direct' });
    assert.is(convAlgorithm(), 'direct');
    applyEnvironment({ DCL_CONV_ALGO: 'winograd' });
    assert.is(convAlgorithm(), 'winograd');
    assert.throws(
      () => applyEnvironment({ DCL_CONV_ALGO: 'fast' }),
      (e: unknown) => e instanceof DclError && e.code === 'E_ARG' && /DCL_CONV_ALGO/.test(e.message),
    );
    assert.is(convAlgorithm(), 'winograd');
  } finally {
    setConvAlgorithm(previous);
  }
});

test('results do not depend on the thread count (1 vs 2 threads, bit for bit)', () => {
  const threads = capabilities().threads;
  const runs = [runGeneral(5, 17, 33, 17, 9, 3, 1, 1, 11), runGeneral(3, 64, 16, 16, 128, 3, 1, 1, 12), runGeneral(1, 128, 8, 8, 256, 3, 1, 1, 13)];
  try {
    withAlgorithm('winograd', () =>
      forEachIsa((isa) => {
        for (const [i, run] of runs.entries()) {
          setThreads(1);
          const one = run();
          setThreads(2);
          const two = run();
          setThreads(Math.max(3, threads));
          const many = run();
          const parts = ['y', 'dx', 'dw', 'db'];
          bitsOf(one).forEach((a, k) => {
            assertSame(bitsOf(two)[k], a, `[${isa}] case ${i} ${parts[k]}: 1 vs 2 threads`);
            assertSame(bitsOf(many)[k], a, `[${isa}] case ${i} ${parts[k]}: 1 vs ${Math.max(3, threads)} threads`);
          });
        }
      }),
    );
  } finally {
    setThreads(threads);
  }
});

test.run();
