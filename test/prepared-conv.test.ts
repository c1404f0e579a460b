// Prepared convolution weights for inference (ops.conv2dPrepare / conv2dPrepared, and the cache of
// nn.Conv2d). The prepared forward must equal the unprepared one bit for bit on every ISA, with
// the conv algorithm forced to 'direct', 'winograd' and left at 'auto', on the DCL-S layers and on
// awkward shapes (odd sizes, channel counts on either side of the vector widths, strides, no
// padding, a 1x1 image, a kernel too large for the SIMD path); prepared weights do not depend on
// the batch or image size. The cache of nn.Conv2d must follow every change of the weights (an
// optimiser step, loadStateDict, markChanged()), of the ISA and of the conv algorithm: each test
// changes one of them, runs inference and compares with a fresh module that never cached anything.
// Training (recording a graph) never reads the cache.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  AdamW,
  autograd,
  capabilities,
  conv2d,
  conv2dPrepare,
  conv2dPrepared,
  convAlgorithm,
  DclError,
  DclS,
  inference,
  setConvAlgorithm,
  Tensor,
  Var,
  withIsa,
} from '../lib/index.js';
import type { ConvAlgorithm, Isa } from '../lib/index.js';
import { randomFloat32, Rng } from './reference.js';
import { assertSame, forEachIsa, isasUnderTest } from './helpers.js';

const test = suite('prepared-conv');

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
  x: [number, number, number, number];
  cout: number;
  k: number | [number, number];
  stride?: number | [number, number];
  padding?: number | [number, number];
}

const CASES: Case[] = [
  // DCL-S, batch 1 and a small batch.
  { x: [1, 1, 64, 64], cout: 32, k: 5, padding: 2 },
  { x: [1, 32, 32, 32], cout: 64, k: 3, padding: 1 },
  { x: [1, 64, 16, 16], cout: 128, k: 3, padding: 1 },
  { x: [1, 128, 8, 8], cout: 256, k: 3, padding: 1 },
  { x: [3, 128, 8, 8], cout: 256, k: 3, padding: 1 },
  { x: [2, 32, 32, 32], cout: 64, k: 3, padding: 1 },
  // Awkward: odd and tiny images, channels around 8 and 16, strides, no padding, a 1x1 image.
  { x: [3, 5, 7, 9], cout: 13, k: 3, padding: 1 },
  { x: [1, 17, 5, 3], cout: 9, k: 3, padding: 1 },
  { x: [2, 9, 6, 6], cout: 33, k: 3, padding: 1 },
  { x: [1, 8, 1, 1], cout: 8, k: 3, padding: 1 },
  { x: [1, 24, 3, 11], cout: 40, k: 3, padding: 1 },
  { x: [2, 3, 11, 10], cout: 19, k: 5, stride: 2, padding: 1 },
  { x: [1, 9, 6, 6], cout: 33, k: 3, padding: 0 },
  { x: [2, 2, 3, 3], cout: 4, k: 1 },
  { x: [1, 7, 9, 8], cout: 17, k: [3, 2], stride: [1, 2], padding: [1, 0] },
  // 17x17 taps: beyond the SIMD kernels (serial fallback, prepared as a copy).
  { x: [1, 2, 18, 18], cout: 3, k: 17, padding: 1 },
];

function caseName(c: Case): string {
  return `x [${c.x.join(', ')}] cout ${c.cout} k ${c.k} s ${c.stride ?? 1} p ${c.padding ?? 0}`;
}

test('the prepared forward equals conv2d bit for bit (every ISA, every conv algorithm)', () => {
  const rng = new Rng(11);
  for (const c of CASES) {
    const [kh, kw] = Array.isArray(c.k) ? c.k : [c.k, c.k];
    const x = new Tensor(randomFloat32(rng, c.x[0] * c.x[1] * c.x[2] * c.x[3]), c.x);
    const w = new Tensor(randomFloat32(rng, c.cout * c.x[1] * kh * kw), [c.cout, c.x[1], kh, kw]);
    const b = new Tensor(randomFloat32(rng, c.cout), [c.cout]);
    const options = { stride: c.stride, padding: c.padding };
    forEachIsa((isa) => {
      for (const algorithm of ['direct', 'winograd', 'auto'] as ConvAlgorithm[]) {
        withAlgorithm(algorithm, () => {
          const prepared = conv2dPrepare(w, options);
          for (const bias of [b, null]) {
            const want = conv2d(x, w, bias, options);
            const got = conv2dPrepared(x, prepared, bias);
            assertSame(got.data, want.data, `${isa} ${algorithm} ${caseName(c)} bias ${bias !== null}`);
          }
          // Prepared weights do not depend on the batch or the image size.
          const x2 = new Tensor(randomFloat32(rng, 2 * c.x[1] * (c.x[2] + 3) * (c.x[3] + 1)), [2, c.x[1], c.x[2] + 3, c.x[3] + 1]);
          assertSame(conv2dPrepared(x2, prepared, b).data, conv2d(x2, w, b, options).data, `${isa} ${algorithm} ${caseName(c)} other size`);
        });
      }
    });
  }
});

test('prepared weights are refused after the ISA or the conv algorithm changed', () => {
  const rng = new Rng(3);
  const x = new Tensor(randomFloat32(rng, 16 * 8 * 8), [1, 16, 8, 8]);
  const w = new Tensor(randomFloat32(rng, 16 * 16 * 9), [16, 16, 3, 3]);
  const isas = isasUnderTest();
  const prepared = withAlgorithm('direct', () => conv2dPrepare(w, { padding: 1 }));
  withAlgorithm('winograd', () => {
    try {
      conv2dPrepared(x, prepared);
      assert.unreachable('no error');
    } catch (e) {
      assert.instance(e, DclError);
      assert.is((e as DclError).code, 'E_ARG');
    }
  });
  for (const a of isas)
    for (const b of isas) {
      if (a === b) continue;
      const p = withIsa(a, () => conv2dPrepare(w, { padding: 1 }));
      withIsa(b, () => {
        assert.throws(() => conv2dPrepared(x, p), (e: unknown) => e instanceof DclError && e.code === 'E_ARG');
      });
    }
  // Wrong input channels, not prepared weights.
  assert.throws(() => conv2dPrepared(new Tensor(new Float32Array(8 * 64), [1, 8, 8, 8]), prepared), (e: unknown) => e instanceof DclError);
  assert.throws(() => conv2dPrepared(x, { data: new Float32Array(4) } as never), (e: unknown) => e instanceof DclError && e.code === 'E_ARG');
});

// ---- the cache of nn.Conv2d -------------------------------------------------------------------

const NET = { codeDims: 8, inputShape: [1, 16, 16] as [number, number, number], channels: [8, 16, 24], kernels: [5, 3, 3], hidden: 16 };

function images(seed: number, n = 3): Var {
  const rng = new Rng(seed);
  return new Var(new Tensor(randomFloat32(rng, n * 16 * 16), [n, 1, 16, 16]));
}

/** The network's output in inference mode, copied. */
function infer(model: DclS, x: Var): Float32Array {
  return inference(() => model.forward(x).data.slice());
}

/** A fresh module (nothing cached) with the same weights, in inference mode. */
function fresh(model: DclS, x: Var): Float32Array {
  const m = new DclS({ ...NET, seed: 99 });
  m.loadStateDict(model.stateDict());
  return infer(m, x);
}

/** The first conv layer of the network. */
function conv0(model: DclS) {
  return model.features.at(0) as unknown as { weight: Var; bias: Var };
}

test('an optimiser step invalidates the prepared weights', () => {
  const model = new DclS({ ...NET, seed: 1 });
  const x = images(1);
  const before = infer(model, x);
  const opt = new AdamW(model.parameters(), { lr: 1e-2 });
  const out = model.forward(x);
  autograd.backward(autograd.sum(out));
  opt.step();
  const after = infer(model, x);
  assertSame(after, fresh(model, x), 'after a step');
  assert.ok(after.some((v, i) => v !== before[i]), 'the step changed the output');
});

test('loadStateDict invalidates the prepared weights', () => {
  const model = new DclS({ ...NET, seed: 1 });
  const other = new DclS({ ...NET, seed: 2 });
  const x = images(2);
  const before = infer(model, x);
  model.loadStateDict(other.stateDict());
  const after = infer(model, x);
  assertSame(after, infer(other, x), 'after loadStateDict');
  assert.ok(after.some((v, i) => v !== before[i]), 'the load changed the output');
});

test('markChanged() invalidates the prepared weights (and without it the cache is used)', () => {
  const model = new DclS({ ...NET, seed: 1 });
  const x = images(3);
  const before = infer(model, x);
  const { weight } = conv0(model);
  for (let i = 0; i < weight.data.length; i++) weight.data[i] *= -1.5;
  // Without markChanged the cached weights are stale: inference still gives the old output.
  assertSame(infer(model, x), before, 'stale cache without markChanged');
  weight.markChanged();
  const after = infer(model, x);
  assertSame(after, fresh(model, x), 'after markChanged');
  assert.ok(after.some((v, i) => v !== before[i]), 'the change reached the output');
  // Through the tensor as well.
  for (let i = 0; i < weight.data.length; i++) weight.data[i] *= 0.5;
  weight.value.markChanged();
  assertSame(infer(model, x), fresh(model, x), 'after Tensor.markChanged');
});

test('training (recording a graph) never uses the prepared weights', () => {
  const model = new DclS({ ...NET, seed: 4 });
  const x = images(4);
  infer(model, x); // fills the cache
  const { weight } = conv0(model);
  for (let i = 0; i < weight.data.length; i++) weight.data[i] += 0.25; // no markChanged: the cache is stale
  const training = model.forward(x).data.slice();
  assertSame(training, fresh(model, x), 'grad mode reads the weights themselves');
  assert.ok(training.some((v, i) => v !== infer(model, x)[i]), 'inference read the stale cache (the cache is in use)');
});

test('an ISA change invalidates the prepared weights', () => {
  const isas = isasUnderTest();
  const model = new DclS({ ...NET, seed: 5 });
  const x = images(5);
  for (const a of isas)
    for (const b of isas) {
      withIsa(a, () => infer(model, x));
      const got = withIsa(b, () => infer(model, x));
      assertSame(got, withIsa(b, () => fresh(model, x)), `${a} then ${b}`);
    }
});

test('a conv algorithm change invalidates the prepared weights', () => {
  const simd = isasUnderTest().filter((isa) => isa !== 'serial') as Isa[];
  if (simd.length === 0) return; // serial runs the direct convolution under every setting
  const model = new DclS({ ...NET, seed: 6 });
  const x = images(6);
  for (const isa of simd)
    withIsa(isa, () => {
      for (const [a, b] of [['direct', 'winograd'], ['winograd', 'direct'], ['auto', 'direct'], ['direct', 'auto']] as ConvAlgorithm[][]) {
        withAlgorithm(a, () => infer(model, x));
        const got = withAlgorithm(b, () => infer(model, x));
        assertSame(got, withAlgorithm(b, () => fresh(model, x)), `${isa}: ${a} then ${b}`);
      }
      // Direct and Winograd differ in rounding: a stale layout would have been visible.
      const d = withAlgorithm('direct', () => infer(model, x));
      const w = withAlgorithm('winograd', () => infer(model, x));
      assert.ok(d.some((v, i) => v !== w[i]), 'direct and winograd round differently');
    });
});

test('inference with prepared weights equals a recorded forward pass bit for bit', () => {
  const model = new DclS({ ...NET, seed: 7 });
  const x = images(7, 5);
  for (const isa of isasUnderTest())
    withIsa(isa, () => {
      const recorded = model.forward(x).data.slice();
      assertSame(infer(model, x), recorded, isa);
    });
  assert.ok(capabilities().isas.length >= 1);
});

test.run();
