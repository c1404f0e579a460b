// The auxiliary attribute term (lib/attribute-head.ts, TrainOptions.attributeWeight): its loss
// against a float64 reference, its gradients by finite differences, and what it does in training.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AttributeHead } from '../lib/attribute-head.js';
import { cudaTrainingUnsupported } from '../lib/cuda-train.js';
import { DclError } from '../lib/errors.js';
import { Rng } from '../lib/random.js';
import { syntheticFaces } from '../lib/synthetic.js';
import { checkTrainOptions, trainSync } from '../lib/train.js';
import type { TrainOptions } from '../lib/train.js';
import { quickTrainOptions } from './helpers.js';

/** float64 reference: weight * mean over labelled rows of -log softmax(W p + b)[label]. */
function referenceLoss(values: readonly number[], classes: number, dims: number, p: ArrayLike<number>, labels: Int32Array, weight: number): number {
  let total = 0;
  let labelled = 0;
  for (let r = 0; r < labels.length; r++) {
    if (labels[r] < 0) continue;
    labelled++;
    const z: number[] = [];
    for (let c = 0; c < classes; c++) {
      let s = values[classes * dims + c];
      for (let i = 0; i < dims; i++) s += values[c * dims + i] * p[r * dims + i];
      z.push(s);
    }
    const logSum = Math.log(z.reduce((a, v) => a + Math.exp(v), 0));
    total += logSum - z[labels[r]];
  }
  return labelled ? (weight * total) / labelled : 0;
}

function randomCase(seed: number, classes: number, dims: number, rows: number) {
  const rng = new Rng(seed);
  const head = new AttributeHead(classes, dims, 1e-2);
  for (let k = 0; k < head.parameters.values.length; k++) head.parameters.values[k] = 2 * rng.uniform() - 1;
  const p = Float32Array.from({ length: rows * dims }, () => rng.uniform());
  // Every third row unlabelled (-1); the rest cycle through the classes.
  const labels = Int32Array.from({ length: rows }, (_, r) => (r % 3 === 2 ? -1 : r % classes));
  return { head, p, labels };
}

for (const [classes, dims, rows] of [[2, 8, 7], [3, 5, 11], [5, 32, 4]] as const) {
  test(`attribute term (${classes} classes, ${dims} dims, ${rows} rows): loss matches float64, gradients match finite differences`, () => {
    const { head, p, labels } = randomCase(classes * 100 + dims, classes, dims, rows);
    const weight = 0.7;
    const gradP = new Float32Array(p.length);
    const { loss, gradParameters } = head.loss(p, rows, labels, weight, gradP);
    const values = head.parameters.values.slice();
    assert.ok(Math.abs(loss - referenceLoss(values, classes, dims, p, labels, weight)) < 1e-9, 'loss');
    const h = 1e-6;
    for (let k = 0; k < p.length; k++) {
      const plus = Float64Array.from(p), minus = Float64Array.from(p);
      plus[k] += h;
      minus[k] -= h;
      const fd = (referenceLoss(values, classes, dims, plus, labels, weight) - referenceLoss(values, classes, dims, minus, labels, weight)) / (2 * h);
      assert.ok(Math.abs(fd - gradP[k]) < 1e-5 + 1e-4 * Math.abs(fd), `d/dp[${k}]: ${gradP[k]} vs ${fd}`);
      if (labels[Math.floor(k / dims)] < 0) assert.is(gradP[k], 0, 'an unlabelled row gets no gradient');
    }
    for (let k = 0; k < values.length; k++) {
      const plus = values.slice(), minus = values.slice();
      plus[k] += h;
      minus[k] -= h;
      const fd = (referenceLoss(plus, classes, dims, p, labels, weight) - referenceLoss(minus, classes, dims, p, labels, weight)) / (2 * h);
      assert.ok(Math.abs(fd - gradParameters[k]) < 1e-6 + 1e-5 * Math.abs(fd), `d/dparameter[${k}]: ${gradParameters[k]} vs ${fd}`);
    }
  });
}

test('attribute term: a batch with no labelled row adds nothing; the gradient adds into gradP', () => {
  const { head, p } = randomCase(7, 2, 4, 3);
  const gradP = new Float32Array(p.length).fill(0.25);
  const r = head.loss(p, 3, new Int32Array([-1, -1, -1]), 1, gradP);
  assert.is(r.loss, 0);
  assert.ok(r.gradParameters.every((g) => g === 0));
  assert.ok(gradP.every((g) => g === 0.25));
});

// Training: a generated face set whose attribute is the parity of the person. People are few and
// each has its own face, so the network can learn to write the parity into the code.
const data = syntheticFaces({ identities: 12, imagesPerIdentity: 4, size: 32, seed: 11, noise: 0.05 });
const attributes = Int32Array.from(data.labels, (l) => l % 2);
const options = (extra: Partial<TrainOptions>): TrainOptions => quickTrainOptions({ ...data, attributes }, { layout: '8x4', ...extra });

/** Accuracy of the better of the 8 one-dimension threshold rules on the codes (the code's own attribute signal). */
function bestDimensionAccuracy(codes: Int32Array): number {
  let best = 0;
  for (let i = 0; i < 8; i++) {
    const level = Array.from(codes, (c) => (c >>> (4 * i)) & 15);
    for (let t = 0; t < 16; t++) {
      let right = 0;
      level.forEach((v, k) => (right += Number((v > t ? 1 : 0) === attributes[k])));
      best = Math.max(best, right / codes.length, 1 - right / codes.length);
    }
  }
  return best;
}

test('attribute term in training: the code carries the attribute; weight 0 is the same as no attributes', async () => {
  const { encodeSync } = await import('../lib/train.js');
  const encodeAll = (model: ReturnType<typeof trainSync>) => encodeSync(model, { images: data.images, shape: data.shape });
  const withTerm = encodeAll(trainSync(options({ attributeWeight: 5 })));
  const without = encodeAll(trainSync(options({ data })));
  const off = encodeAll(trainSync(options({ attributeWeight: 0 })));
  assert.equal(Array.from(off), Array.from(without), 'weight 0 trains exactly as without attributes');
  const a = bestDimensionAccuracy(withTerm), b = bestDimensionAccuracy(without);
  assert.ok(a >= 0.85 && a > b + 0.1, `best single-dimension attribute accuracy: with the term ${a.toFixed(3)}, without ${b.toFixed(3)}`);
});

test('attribute term: the head learns at its own rate, not at alpha / beta\'s', async () => {
  const { encodeSync } = await import('../lib/train.js');
  const encodeAll = (model: ReturnType<typeof trainSync>) => encodeSync(model, { images: data.images, shape: data.shape });
  // With alpha and beta held still the head must still learn and write the attribute into the code.
  const still = trainSync(options({ attributeWeight: 5, alphaBetaLearningRate: 0 }));
  assert.is(still.training.attributeLearningRate, 1e-2);
  const a = bestDimensionAccuracy(encodeAll(still));
  const b = bestDimensionAccuracy(encodeAll(trainSync(options({ data, alphaBetaLearningRate: 0 }))));
  assert.ok(a > b + 0.1, `with alpha / beta still: with the term ${a.toFixed(3)}, without ${b.toFixed(3)}`);
  // A head that does not learn stays at zero and passes no gradient: the same codes as no term.
  const frozen = encodeAll(trainSync(options({ attributeWeight: 5, attributeLearningRate: 0 })));
  assert.equal(Array.from(frozen), Array.from(encodeAll(trainSync(options({ data })))), 'a head at learning rate 0 changes nothing');
});

test('attribute options: settings, validation and the CUDA trainer', () => {
  const settings = checkTrainOptions(options({})).settings;
  assert.is(settings.attributeWeight, 1, 'default weight with attributes');
  assert.is(settings.attributeLearningRate, 1e-2, 'the head\'s own learning rate');
  assert.is(checkTrainOptions(options({ data })).settings.attributeWeight, 0, 'none without attributes');
  assert.match(cudaTrainingUnsupported(settings) ?? '', /attributes/);
  const bad = (extra: Partial<TrainOptions>, pattern: RegExp, code = 'E_ARG') => {
    try {
      checkTrainOptions(options(extra));
      assert.unreachable('should have thrown');
    } catch (error) {
      assert.instance(error, DclError);
      assert.is((error as DclError).code, code);
      assert.match((error as Error).message, pattern);
    }
  };
  bad({ data: { ...data, attributes: [0, 1] as unknown as Int32Array } }, /Int32Array for options\.data\.attributes/);
  bad({ data: { ...data, attributes: new Int32Array(3) } }, /one per image/, 'E_SHAPE');
  bad({ data: { ...data, attributes: Int32Array.from(attributes, (a, i) => (i === 5 ? -2 : a)) } }, /-2 at index 5/);
  bad({ data: { ...data, attributes: new Int32Array(attributes.length) } }, /at least two attribute classes/);
  bad({ data, attributeWeight: 1 }, /options\.data\.attributes .* with options\.attributeWeight/);
  bad({ attributeWeight: -1 }, /attributeWeight/);
  bad({ attributeLearningRate: -1 }, /attributeLearningRate/);
});

test.run();
