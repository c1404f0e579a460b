// train(), encode(), the model file: small networks on a generated face set with identity
// structure, so each run takes a second or two.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DclError } from '../lib/errors.js';
import { loadModelSync } from '../lib/model.js';
import { batchLoss, checkTrainOptions, encode, encodeSync, train, trainSync } from '../lib/train.js';
import { floorSigmoidGradient, methodAt } from '../lib/train-setup.js';
import { Rng } from '../lib/random.js';
import { quickTrainOptions, SMALL_NETWORK } from './helpers.js';
import type { TrainOptions, TrainProgress } from '../lib/train.js';
import { syntheticFaces } from '../lib/synthetic.js';
import { codeDistance, parseLayout, quantize } from '../lib/codes.js';
import { Tensor } from '../lib/tensor.js';
import { augmentBatch, loadDataset, loadImages, resolvePreprocessing } from '../lib/images.js';
import sharp from 'sharp';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dcl-train-'));
const data = syntheticFaces({ identities: 12, imagesPerIdentity: 4, size: 32, seed: 11, noise: 0.05 });
const small = SMALL_NETWORK;
const options = (extra: Partial<TrainOptions>): TrainOptions => quickTrainOptions(data, extra);

/** Mean code distance of same-person pairs and of different-person pairs. */
function separation(codes: Int32Array, layout: string) {
  let same = 0, sameN = 0, diff = 0, diffN = 0;
  for (let i = 0; i < codes.length; i++)
    for (let j = i + 1; j < codes.length; j++) {
      const d = codeDistance(codes[i], codes[j], layout);
      if (data.labels[i] === data.labels[j]) (same += d, sameN++);
      else (diff += d, diffN++);
    }
  return { same: same / sameN, different: diff / diffN };
}

for (const [method, layout] of [['rounding', '16x2'], ['rounding', '16x1'], ['dp', '16x1'], ['std', '16x1']] as const) {
  test(`${method} ${layout}: the loss falls and same-person codes end closer than different-person codes`, () => {
    const progress: TrainProgress[] = [];
    const model = trainSync(options({ method, layout, onProgress: (p) => progress.push(p) }));
    assert.ok(progress.length >= 10, 'onProgress was called');
    const early = progress.slice(0, 3).reduce((s, p) => s + p.loss, 0) / 3;
    const late = progress.slice(-3).reduce((s, p) => s + p.loss, 0) / 3;
    assert.ok(late < early, `loss ${early.toFixed(4)} -> ${late.toFixed(4)}`);
    const codes = encodeSync(model, { images: data.images, shape: data.shape });
    const s = separation(codes, layout);
    assert.ok(s.same < s.different, `same ${s.same.toFixed(3)} vs different ${s.different.toFixed(3)}`);
    assert.is(model.method, method);
    assert.is(model.layout.name, layout);
  });
}

test('defaults per method and layout: alpha, code normalisation and omega', () => {
  const settings = (extra: Partial<TrainOptions>) => checkTrainOptions(options(extra)).settings;
  // alpha: 10 / the largest distance.
  assert.is(settings({ layout: '32x1' }).alpha, 10 / 32);
  assert.is(settings({ layout: '8x4' }).alpha, 10 / 120);
  assert.is(settings({ layout: '4x8', alpha: 0.5 }).alpha, 0.5, 'a given alpha wins');
  // Code normalisation: Q >= 8 (and 'dp' without its rounding warm-up), rising from 1.7 to 6.
  for (const [method, layout, codeNorm, codeNormEnd] of [
    ['dp', '32x1', 0, undefined],
    ['rounding', '4x8', 1.7, 6],
    ['rounding', '32x1', 0, undefined],
    ['rounding', '8x4', 0, undefined],
    ['std', '32x1', 0, undefined],
    ['float', '32x1', 0, undefined],
  ] as const) {
    const { network } = settings({ method, layout, network: {} });
    assert.is(network.codeNorm, codeNorm, `${method} ${layout} codeNorm`);
    assert.is(network.codeNormEnd, codeNormEnd, `${method} ${layout} codeNormEnd`);
  }
  assert.is(settings({ method: 'dp', layout: '32x1', network: { codeNorm: 3 } }).network.codeNormEnd, undefined, 'a given codeNorm stays constant');
  // The rounding warm-up: half of a 'dp' run by default, none for the others; DP without it
  // takes the rising code normalisation.
  assert.is(settings({ method: 'dp' }).roundingWarmup, 0.5);
  for (const method of ['rounding', 'std', 'float'] as const) assert.is(settings({ method }).roundingWarmup, 0, method);
  const cold = settings({ method: 'dp', roundingWarmup: 0, network: {} });
  assert.equal([cold.network.codeNorm, cold.network.codeNormEnd], [1.7, 6]);
  assert.is(settings({ method: 'std', roundingWarmup: 0.25 }).roundingWarmup, 0.25);
  assert.is(settings({ method: 'std' }).omega, 0.01);
  // Centring instead: no default code normalisation then.
  const centred = settings({ method: 'dp', layout: '32x1', network: { codeCentre: true } }).network;
  assert.is(centred.codeNorm, 0);
  assert.is(centred.codeNormEnd, undefined);
});

test('rounding warm-up: methodAt trains with rounding for the first fraction of the steps; validation', () => {
  const s = { method: 'dp' as const, roundingWarmup: 0.5 };
  assert.equal([0, 1, 4, 5, 9].map((step) => methodAt(s, step, 10)), ['rounding', 'rounding', 'rounding', 'dp', 'dp']);
  assert.is(methodAt({ method: 'dp', roundingWarmup: 0 }, 0, 10), 'dp');
  assert.is(methodAt({ method: 'std', roundingWarmup: 0.3 }, 2, 10), 'rounding');
  assert.is(methodAt({ method: 'std', roundingWarmup: 0.3 }, 3, 10), 'std');
  for (const bad of [-0.1, 1, 2, '0.5', NaN])
    try {
      checkTrainOptions(options({ method: 'dp', roundingWarmup: bad as number }));
      assert.unreachable(`roundingWarmup ${String(bad)} was accepted`);
    } catch (error) {
      assert.instance(error, DclError);
      assert.match((error as Error).message, /options\.roundingWarmup/);
    }
});

test('a DP run with the rounding warm-up: the loss it reports switches from rounding to the DP at the half', () => {
  // The DP's expected loss over random bits is above the loss of the rounded codes for the same
  // network (bits that are not yet certain cost more), so the reported loss steps up at the switch.
  const progress: TrainProgress[] = [];
  const model = trainSync(options({ method: 'dp', layout: '16x1', steps: 40, progressEvery: 1, onProgress: (p) => progress.push(p) }));
  assert.is(model.training.roundingWarmup, 0.5);
  assert.ok(progress.every((p) => Number.isFinite(p.loss)));
  const before = progress[18].loss, after = progress[20].loss;
  assert.ok(after > before, `loss at step 19 (rounding) ${before.toFixed(4)}, at step 21 (dp) ${after.toFixed(4)}`);
});

test("roundingShare: 'dp' keeps half the rounding loss by default; validation", () => {
  const settings = (extra: Partial<TrainOptions>) => checkTrainOptions(options(extra)).settings;
  assert.is(settings({ method: 'dp' }).roundingShare, 0.5);
  assert.is(settings({ method: 'dp', roundingShare: 0 }).roundingShare, 0);
  assert.is(settings({ method: 'dp', roundingShare: 1 }).roundingShare, 1);
  for (const method of ['rounding', 'std', 'float'] as const) assert.is(settings({ method }).roundingShare, 0, method);
  const bad: [Partial<TrainOptions>, RegExp][] = [
    [{ method: 'dp', roundingShare: -0.1 }, /options\.roundingShare/],
    [{ method: 'dp', roundingShare: 1.5 }, /options\.roundingShare/],
    [{ method: 'dp', roundingShare: Number.NaN }, /options\.roundingShare/],
    [{ method: 'dp', roundingShare: '0.5' as unknown as number }, /options\.roundingShare/],
    [{ method: 'rounding', roundingShare: 0.5 }, /only with method 'dp'/],
  ];
  for (const [extra, message] of bad)
    try {
      checkTrainOptions(options(extra));
      assert.unreachable(`${JSON.stringify(extra)} was accepted`);
    } catch (error) {
      assert.instance(error, DclError);
      assert.is((error as DclError).code, 'E_ARG');
      assert.match((error as Error).message, message);
    }
});

test('batchLoss for dp with roundingShare s: (1 - s) x the DP loss + s x the rounding loss, gradients likewise', () => {
  const rng = new Rng(5);
  const layout = parseLayout('32x1');
  const count = 7;
  const p = Float32Array.from({ length: count * layout.n }, () => rng.uniform());
  const pairs = Int32Array.from([0, 1, 0, 2, 1, 3, 2, 4, 3, 5, 4, 6, 5, 6, 0, 6]);
  const labels = Float32Array.from([-1, 1, -1, 1, 1, -1, 1, -1]);
  const weights = Float32Array.from([1, 0.5, 2, 1, 1, 0.25, 1, 1]);
  const run = (method: 'dp' | 'rounding', roundingShare?: number) => {
    const grad = new Float32Array(p.length);
    const r = batchLoss(p, count, layout, { method, omega: 0, roundingShare }, pairs, labels, weights, 0.4, 5, grad);
    return { ...r, grad };
  };
  const dp = run('dp', 0);
  const rounding = run('rounding');
  assert.ok(Math.abs(dp.loss - rounding.loss) > 1e-3, 'the two losses differ on this batch');
  assert.equal(run('dp'), dp, 'no share given: the DP alone');
  for (const share of [0.25, 0.5, 1]) {
    const mix = run('dp', share);
    const near = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) <= 1e-12 + 1e-9 * Math.abs(b), `${what} at share ${share}: ${a} against ${b}`);
    near(mix.loss, (1 - share) * dp.loss + share * rounding.loss, 'loss');
    near(mix.gradAlpha, (1 - share) * dp.gradAlpha + share * rounding.gradAlpha, 'd/dalpha');
    near(mix.gradBeta, (1 - share) * dp.gradBeta + share * rounding.gradBeta, 'd/dbeta');
    for (let i = 0; i < p.length; i++) near(mix.grad[i], Math.fround((1 - share) * dp.grad[i] + share * rounding.grad[i]), `dL/dp[${i}]`);
  }
});

test('std term: omega > 0 pushes each output apart over the images, towards both 0 and 1', () => {
  // The measure is the term's own target: the standard deviation of each output over the images,
  // averaged over the outputs. It is at most 0.5, reached only when an output sits at 0 for half
  // of the images and at 1 for the other half. Without the term, outputs drift to a constant
  // 0 or 1 (saturated but useless: the same bit for everyone).
  // The term alone (codeNorm 0, the default for 'std'): code normalisation also keeps the
  // outputs apart, which is checked last.
  const spread = (omega: number, codeNorm = 0) => {
    const model = trainSync(options({ method: 'std', layout: '16x1', omega, steps: 60, network: { ...small, codeNorm } }));
    const n = data.labels.length;
    const p = model.probabilities(data.images, n);
    let total = 0;
    for (let i = 0; i < 16; i++) {
      let mean = 0;
      for (let b = 0; b < n; b++) mean += p[b * 16 + i];
      mean /= n;
      let v = 0;
      for (let b = 0; b < n; b++) v += (p[b * 16 + i] - mean) ** 2;
      total += Math.sqrt(v / n);
    }
    return total / 16;
  };
  const without = spread(0);
  const withStd = spread(5);
  assert.ok(withStd > without + 0.1 && withStd > 0.25, `mean per-output std: omega 0 -> ${without.toFixed(3)}, omega 5 -> ${withStd.toFixed(3)}`);
  const normalised = spread(0, 1.7);
  assert.ok(normalised > without + 0.05, `code normalisation alone: ${normalised.toFixed(3)} against ${without.toFixed(3)}`);
});

test('save / load: identical codes; the file is safetensors with our metadata', async () => {
  const model = trainSync(options({ steps: 10, layout: '8x4' }));
  const file = path.join(dir, 'm.safetensors');
  await model.save(file);
  const loaded = loadModelSync(file);
  const a = encodeSync(model, { images: data.images, shape: data.shape });
  const b = await encode(loaded, { images: data.images, shape: data.shape }, { batchSize: 7 });
  assert.equal(Array.from(b), Array.from(a));
  assert.is(loaded.layout.name, '8x4');
  assert.is(loaded.alpha, model.alpha);
  assert.is(loaded.beta, model.beta);
  assert.equal(loaded.architecture, model.architecture);
  const bytes = fs.readFileSync(file);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8'));
  assert.is(header.__metadata__['dcl.format'], 'dcl-native-model');
  assert.ok(header['features.0.weight'].dtype === 'F32');
});

function expectCode(fn: () => unknown, code: string, pattern?: RegExp) {
  try {
    fn();
  } catch (e) {
    assert.instance(e, DclError);
    assert.is((e as DclError).code, code, (e as Error).message);
    if (pattern) assert.match((e as Error).message, pattern);
    return;
  }
  assert.unreachable(`expected ${code}`);
}

test('corrupt, truncated and foreign model files give DclError, never a crash', async () => {
  const model = trainSync(options({ steps: 2 }));
  const file = path.join(dir, 'good.safetensors');
  await model.save(file);
  const good = fs.readFileSync(file);
  const flipped = Buffer.from(good);
  flipped[flipped.length - 10] ^= 0xff;
  fs.writeFileSync(path.join(dir, 'flipped.safetensors'), flipped);
  expectCode(() => loadModelSync(path.join(dir, 'flipped.safetensors')), 'E_FORMAT', /checksum/);
  fs.writeFileSync(path.join(dir, 'short.safetensors'), good.subarray(0, good.length - 100));
  expectCode(() => loadModelSync(path.join(dir, 'short.safetensors')), 'E_FORMAT', /truncated/);
  fs.writeFileSync(path.join(dir, 'text.safetensors'), 'hello, I am not a model');
  expectCode(() => loadModelSync(path.join(dir, 'text.safetensors')), 'E_FORMAT');
  // A valid safetensors file from another tool.
  const text = Buffer.from(JSON.stringify({ w: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }));
  const h = Buffer.alloc(8);
  h.writeBigUInt64LE(BigInt(text.length));
  fs.writeFileSync(path.join(dir, 'foreign.safetensors'), Buffer.concat([h, text, Buffer.alloc(4)]));
  expectCode(() => loadModelSync(path.join(dir, 'foreign.safetensors')), 'E_FORMAT', /format tag/);
  expectCode(() => loadModelSync(path.join(dir, 'missing.safetensors')), 'E_IO', /ENOENT/);
});

test('train() runs in a worker, reports progress, and gives the same model as trainSync', async () => {
  const seen: number[] = [];
  const viaWorker = await train(options({ steps: 12, worker: true, onProgress: (p) => seen.push(p.step) }));
  const inline = trainSync(options({ steps: 12 }));
  assert.equal(seen, [5, 10, 12]);
  const a = encodeSync(viaWorker, { images: data.images, shape: data.shape });
  const b = encodeSync(inline, { images: data.images, shape: data.shape });
  assert.equal(Array.from(a), Array.from(b), 'same seed, ISA and threads: identical codes');
});

test('an AbortSignal stops training with E_ABORTED (worker and inline)', async () => {
  const controller = new AbortController();
  const pending = train(
    options({ steps: 100000, worker: true, progressEvery: 1, signal: controller.signal, onProgress: (p) => p.step === 3 && controller.abort() }),
  );
  try {
    await pending;
    assert.unreachable('expected E_ABORTED');
  } catch (e) {
    assert.is((e as DclError).code, 'E_ABORTED');
  }
  const c2 = new AbortController();
  c2.abort();
  try {
    await train(options({ signal: c2.signal }));
    assert.unreachable('expected E_ABORTED');
  } catch (e) {
    assert.is((e as DclError).code, 'E_ABORTED');
  }
});

// The collapse guard. Two settings that collapse on this data: alpha and beta learnt 1,000 times
// faster than the default (the restart, ten times slower, trains), and a learning rate 40 times
// the quick runs' (every image has one code from the first steps, in every run).
const collapsesOnce = { layout: '8x4', learningRate: 2e-3, alphaBetaLearningRate: 10, collapsePatience: 10 } as const;
const collapsesAlways = { layout: '8x4', learningRate: 0.02, collapsePatience: 10 } as const;

test('collapse guard: a run that collapses starts again with alpha and beta learnt ten times more slowly, and equals that run trained from the start', () => {
  const progress: TrainProgress[] = [];
  const model = trainSync(options({ ...collapsesOnce, progressEvery: 1, onProgress: (p) => progress.push(p) }));
  const restarts = model.training.restarts as { collapsedAtStep: number; alphaBetaLearningRate: number; learningRate: number }[];
  assert.is(restarts.length, 1, JSON.stringify(restarts));
  assert.ok(restarts[0].collapsedAtStep >= 9 && restarts[0].collapsedAtStep < 80, `collapsed at step ${restarts[0].collapsedAtStep}`);
  assert.is(restarts[0].alphaBetaLearningRate, 10);
  assert.is(restarts[0].learningRate, 2e-3);
  assert.is(model.training.alphaBetaLearningRate, 1, 'the model records the settings of the run that finished');
  // The collapsed run reported one code for the last `patience` steps, then the new run starts at step 1.
  const first = progress.findIndex((p) => p.restarts === 1);
  assert.ok(first > 0, 'progress counts the restart');
  assert.equal(progress.slice(first - 10, first).map((p) => p.distinctCodes), Array(10).fill(1));
  assert.is(progress[first].step, 1);
  assert.is(progress.length, first + 80, 'the new run reports every one of its steps');
  assert.ok(progress.slice(-10).every((p) => p.distinctCodes > 1), `distinct codes at the end: ${progress.slice(-10).map((p) => p.distinctCodes)}`);
  const direct = trainSync(options({ ...collapsesOnce, alphaBetaLearningRate: 1 }));
  assert.equal(direct.training.restarts, []);
  assert.equal(
    Array.from(encodeSync(model, { images: data.images, shape: data.shape })),
    Array.from(encodeSync(direct, { images: data.images, shape: data.shape })),
    'the restarted run is the run with the slower rate from the start',
  );
  assert.is(model.alpha, direct.alpha);
  assert.is(model.beta, direct.beta);
});

test('collapse guard: E_COLLAPSED after the last restart, naming each run; learning rate halved when alpha and beta are fixed; collapsePatience 0 turns it off', async () => {
  expectCode(() => trainSync(options(collapsesAlways)), 'E_COLLAPSED', /10 batches in a row got the same code, in each of 3 runs, at step \d+ \(alphaBetaLearningRate 0.01, .*alphaBetaLearningRate 0.001, .*alphaBetaLearningRate 0.0001/);
  expectCode(() => trainSync(options({ ...collapsesAlways, collapseRestarts: 0 })), 'E_COLLAPSED', /in its one run, at step \d+ \(/);
  expectCode(
    () => trainSync(options({ ...collapsesAlways, learnAlphaBeta: false })),
    'E_COLLAPSED',
    /learningRate 0.02\).*learningRate 0.01\).*learningRate 0.005\)/,
  );
  // Through the worker, the same error.
  try {
    await train(options({ ...collapsesAlways, collapseRestarts: 0, worker: true }));
    assert.unreachable('expected E_COLLAPSED');
  } catch (e) {
    assert.is((e as DclError).code, 'E_COLLAPSED', (e as Error).message);
  }
  // Without the guard the collapsed run goes on to the end, one code for every image.
  const progress: TrainProgress[] = [];
  const model = trainSync(options({ ...collapsesAlways, collapsePatience: 0, onProgress: (p) => progress.push(p) }));
  assert.is(progress[progress.length - 1].step, 80);
  assert.is(progress[progress.length - 1].distinctCodes, 1);
  assert.is(new Set(encodeSync(model, { images: data.images, shape: data.shape })).size, 1);
  expectCode(() => trainSync(options({ collapsePatience: -1 })), 'E_ARG', /options.collapsePatience/);
  expectCode(() => trainSync(options({ collapsePatience: 2.5 })), 'E_ARG', /options.collapsePatience/);
  expectCode(() => trainSync(options({ collapseRestarts: 11 })), 'E_ARG', /options.collapseRestarts/);
});

test('sigmoid gradient floor: dL/dz uses max(p (1 - p), floor * min(1, p (1 - p) / 1e-4)), on random outputs near 0, 1 and in between', () => {
  const rng = new Rng(5);
  for (const length of [1, 7, 33, 1000]) {
    for (const floor of [0.01, 0.05, 0.25]) {
      // Outputs from a wide range of pre-sigmoid values, so some are saturated past 1e-4 and some round to exactly 0 or 1.
      const p = Float32Array.from({ length }, () => 1 / (1 + Math.exp(-(rng.uniform() * 40 - 20))));
      const grad = Float32Array.from({ length }, () => rng.uniform() * 2 - 1);
      const floored = grad.slice();
      floorSigmoidGradient(p, floored, floor);
      for (let i = 0; i < length; i++) {
        const slope = p[i] * (1 - p[i]);
        const want = grad[i] * Math.max(slope, floor * Math.min(1, slope / 1e-4));
        const got = floored[i] * slope;
        assert.ok(Math.abs(got - want) <= 1e-6 * Math.abs(want) + 1e-30, `length ${length}, floor ${floor}, p ${p[i]}: dL/dz ${got} vs ${want}`);
      }
    }
  }
  const grad = Float32Array.from([0.5, -0.25]);
  floorSigmoidGradient(Float32Array.from([0.999, 0.5]), grad, 0);
  assert.equal(Array.from(grad), [0.5, -0.25], 'floor 0 changes nothing');
  expectCode(() => trainSync(options({ sigmoidGradientFloor: -0.01 })), 'E_ARG', /options.sigmoidGradientFloor/);
  expectCode(() => trainSync(options({ sigmoidGradientFloor: 0.3 })), 'E_ARG', /options.sigmoidGradientFloor/);
  assert.is(checkTrainOptions(options({})).settings.sigmoidGradientFloor, 0);
});

test('progress counts the distinct codes of each batch', () => {
  const progress: TrainProgress[] = [];
  trainSync(options({ layout: '8x4', steps: 3, progressEvery: 1, onProgress: (p) => progress.push(p) }));
  // 8 people x 4 images, and a healthy start: (nearly) every image its own code.
  for (const p of progress) assert.ok(p.distinctCodes > 16 && p.distinctCodes <= 32, `step ${p.step}: ${p.distinctCodes}`);
  assert.equal(progress.map((p) => p.restarts), [0, 0, 0]);
});

test('bad training and encode arguments give DclError with the argument named', async () => {
  expectCode(() => trainSync(undefined as unknown as TrainOptions), 'E_ARG', /options/);
  expectCode(() => trainSync(options({ layout: '8x5' })), 'E_ARG', /options.layout/);
  expectCode(() => trainSync(options({ method: 'dp', layout: '8x4' })), 'E_ARG', /binary layout/);
  expectCode(() => trainSync(options({ method: 'magic' as never })), 'E_ARG', /options.method/);
  expectCode(() => trainSync(options({ learningRate: -1 })), 'E_ARG', /options.learningRate/);
  expectCode(() => trainSync(options({ steps: 0.5 })), 'E_ARG', /options.steps/);
  expectCode(() => trainSync({ ...options({}), data: { ...data, labels: data.labels.subarray(1) } }), 'E_SHAPE', /options.data.images/);
  expectCode(() => trainSync({ ...options({}), data: { ...data, shape: [1, 32] as never } }), 'E_SHAPE', /options.data.shape/);
  expectCode(() => trainSync(options({ typo: 1 } as never)), 'E_ARG', /typo/);
  const single = { images: data.images.subarray(0, 3 * 32 * 32), labels: Int32Array.from([0, 1, 2]), shape: data.shape };
  expectCode(() => trainSync({ ...options({}), data: single }), 'E_ARG', /2 or more images/);
  const model = trainSync(options({ steps: 1 }));
  expectCode(() => encodeSync(model, { images: new Float32Array(10), shape: data.shape }), 'E_SHAPE', /input.images/);
  expectCode(() => encodeSync(model, { images: data.images, shape: [1, 64, 64] }), 'E_SHAPE', /input.shape/);
  expectCode(() => encodeSync({} as never, { images: data.images, shape: data.shape }), 'E_ARG', /model/);
  try {
    await encode(model, { images: data.images, shape: data.shape }, { batchSize: 0 });
    assert.unreachable('expected E_ARG');
  } catch (e) {
    assert.is((e as DclError).code, 'E_ARG');
  }
});

test('people with fewer images than K give smaller batches, and training takes them', () => {
  // Person k keeps 2 + k % 3 of its 4 images: batch sizes vary from step to step.
  const keep: number[] = [];
  for (let i = 0; i < data.labels.length; i++) if (i % 4 < 2 + (data.labels[i] % 3)) keep.push(i);
  const per = 32 * 32;
  const images = new Float32Array(keep.length * per);
  keep.forEach((k, j) => images.set(data.images.subarray(k * per, (k + 1) * per), j * per));
  const labels = Int32Array.from(keep, (k) => data.labels[k]);
  const model = trainSync({ ...options({ steps: 12, identitiesPerBatch: 4 }), data: { images, labels, shape: data.shape } });
  assert.is(encodeSync(model, { images, shape: data.shape }).length, keep.length);
});

test('stored images with a margin: augmentation trains, encode centre-crops, preprocessing is recorded', async () => {
  // 36x36 stored images for a 32x32 network (2 pixels of margin each way).
  const stored = syntheticFaces({ identities: 12, imagesPerIdentity: 4, size: 36, seed: 11, noise: 0.05 });
  const pre = resolvePreprocessing({ size: 32, storedSize: 36 });
  const base = { ...options({ steps: 30 }), data: stored, preprocessing: pre };
  const a = trainSync(base);
  const b = trainSync(base);
  assert.equal(encodeSync(a, stored), encodeSync(b, stored), 'augmentation is seeded: same model twice');
  assert.is(a.architecture.inputShape.join(), '1,32,32');
  assert.equal(a.preprocessing, pre);
  const plain = trainSync({ ...base, augment: false });
  assert.not.equal(encodeSync(plain, stored), encodeSync(a, stored), 'augment: false gives another model');
  // Centre crops by hand encode to the same codes as the stored images.
  const centre = augmentBatch({ images: stored.images, shape: stored.shape, count: stored.labels.length }, pre, { flip: false, shift: 0, scale: 0 });
  assert.equal(encodeSync(a, { images: centre.images, shape: centre.shape }), encodeSync(a, stored));
  // The model file keeps the preprocessing.
  const file = path.join(dir, 'stored.safetensors');
  a.saveSync(file);
  assert.equal(loadModelSync(file).preprocessing, pre);
  expectCode(() => trainSync({ ...base, preprocessing: resolvePreprocessing({ size: 30, storedSize: 34 }) }), 'E_SHAPE', /options.data.shape/);
  expectCode(() => trainSync({ ...options({}), augment: true }), 'E_ARG', /options.preprocessing/);
  expectCode(() => trainSync({ ...base, augment: { shift: 9 } }), 'E_ARG', /options.augment.shift/);
});

test('encode(model, files) decodes as the model was trained and matches encoding the arrays', async () => {
  const files: string[] = [];
  for (let i = 0; i < 6; i++) {
    const raw = new Uint8Array(40 * 40);
    for (let k = 0; k < raw.length; k++) raw[k] = (k * (7 + i) + i * 31) % 251;
    const file = path.join(dir, `face${i}.png`);
    await sharp(raw, { raw: { width: 40, height: 40, channels: 1 } }).png().toFile(file);
    files.push(file);
  }
  const pre = resolvePreprocessing({ size: 32 });
  const decoded = await loadImages(files, pre);
  const labels = Int32Array.from([0, 0, 1, 1, 2, 2]);
  const model = trainSync({ ...options({ steps: 3, identitiesPerBatch: 3, imagesPerIdentity: 2 }), data: { images: decoded.images, labels, shape: decoded.shape }, preprocessing: pre });
  // A loadDataset() result is accepted as training data as it is.
  const set = await loadDataset({ files, labels: Int32Array.from([0, 0, 1, 1, 2, 2]) }, pre, { cache: false });
  const fromSet = trainSync({ ...options({ steps: 3, identitiesPerBatch: 3, imagesPerIdentity: 2 }), data: set, preprocessing: pre });
  assert.equal(encodeSync(fromSet, set), encodeSync(model, set));
  const fromFiles = await encode(model, files);
  const fromBuffers = await encode(model, files.map((f) => fs.readFileSync(f)));
  assert.equal(fromFiles, encodeSync(model, { images: decoded.images, shape: decoded.shape }));
  assert.equal(fromBuffers, fromFiles);
  try {
    await encode(model, [path.join(dir, 'missing.png')]);
    assert.unreachable('expected E_IO');
  } catch (e) {
    assert.is((e as DclError).code, 'E_IO');
    assert.match((e as DclError).message, /missing\.png/);
  }
  // A model trained on caller-made arrays cannot guess how to decode files.
  const arrays = trainSync(options({ steps: 1 }));
  try {
    await encode(arrays, files);
    assert.unreachable('expected E_ARG');
  } catch (e) {
    assert.is((e as DclError).code, 'E_ARG');
    assert.match((e as DclError).message, /trained on arrays/);
  }
});

test('mirrorAverage: codes quantise the mean of the image and its mirror, survive save / load, and old files read as off', async () => {
  const plain = trainSync(options({ steps: 6, layout: '8x4' }));
  const mirrored = trainSync(options({ steps: 6, layout: '8x4', mirrorAverage: true }));
  assert.is(plain.encoding.mirrorAverage, false);
  assert.is(mirrored.encoding.mirrorAverage, true);
  // Same options and seed: the same weights, so the only difference is the encoding.
  const [c, h, w] = data.shape;
  const count = data.labels.length;
  const flipped = new Float32Array(data.images.length);
  for (let row = 0; row < count * c * h; row++) for (let x = 0; x < w; x++) flipped[row * w + x] = data.images[row * w + w - 1 - x];
  const p = plain.probabilities(data.images, count);
  const q = plain.probabilities(flipped, count);
  const mean = Float32Array.from(p, (v, i) => (v + q[i]) / 2);
  const expected = quantize(new Tensor(mean, [count, 8]), '8x4');
  const codes = encodeSync(mirrored, { images: data.images, shape: data.shape });
  assert.equal(Array.from(codes), Array.from(expected));
  // A face and its mirror get the same code.
  assert.equal(Array.from(encodeSync(mirrored, { images: flipped, shape: data.shape })), Array.from(codes));
  assert.ok(Array.from(codes).some((v, i) => v !== encodeSync(plain, { images: data.images, shape: data.shape })[i]), 'mirror averaging changed no code');
  const file = path.join(dir, 'mirror.safetensors');
  await mirrored.save(file);
  const loaded = loadModelSync(file);
  assert.is(loaded.encoding.mirrorAverage, true);
  assert.equal(Array.from(await encode(loaded, { images: data.images, shape: data.shape }, { batchSize: 5 })), Array.from(codes));
  // A version-1 file (written before 'dcl.encoding' existed) reads as a plain forward pass; a
  // version-2 file without a valid entry is an error.
  const rewrite = (name: string, edit: (meta: Record<string, string>) => void) => {
    const bytes = fs.readFileSync(file);
    const n = Number(bytes.readBigUInt64LE(0));
    const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
    edit(header.__metadata__);
    const text = Buffer.from(JSON.stringify(header));
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(text.length));
    const out = path.join(dir, name);
    fs.writeFileSync(out, Buffer.concat([length, text, bytes.subarray(8 + n)]));
    return out;
  };
  const v1 = loadModelSync(rewrite('v1.safetensors', (m) => { m['dcl.format_version'] = '1'; delete m['dcl.encoding']; }));
  assert.is(v1.encoding.mirrorAverage, false);
  expectCode(() => loadModelSync(rewrite('bad-enc.safetensors', (m) => { m['dcl.encoding'] = '{"mirrorAverage":"yes"}'; })), 'E_FORMAT', /encoding/);
  expectCode(() => loadModelSync(rewrite('no-enc.safetensors', (m) => { delete m['dcl.encoding']; })), 'E_FORMAT', /encoding/);
  expectCode(() => loadModelSync(rewrite('v3.safetensors', (m) => { m['dcl.format_version'] = '3'; })), 'E_FORMAT', /version 3/);
  expectCode(() => trainSync(options({ steps: 1, mirrorAverage: 1 as unknown as boolean })), 'E_ARG', /mirrorAverage/);
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));
test.run();
