// Batch normalisation (BatchNorm1d) and DclS's code normalisation (codeNorm),
// its folding into a plain DclS, and hard-negative pair weights (lib/sampling.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs';
import { autograd as ag, BatchNorm1d, DclS, loadModel, noGrad, Rng, Tensor, train } from '../lib/index.js';
import { hardNegativeWeights, makeAllPairs } from '../lib/sampling.js';
import { codeNormAt, trainSync } from '../lib/train.js';
import { syntheticFaces } from '../lib/synthetic.js';
import { assertFails } from './helpers.js';

/** BatchNorm1d's training-mode output, in float64: the oracle. */
function batchNormReference(x: Float64Array, n: number, f: number, gamma: Float64Array, beta: Float64Array, eps: number): Float64Array {
  const y = new Float64Array(n * f);
  for (let j = 0; j < f; j++) {
    let mean = 0;
    for (let i = 0; i < n; i++) mean += x[i * f + j];
    mean /= n;
    let variance = 0;
    for (let i = 0; i < n; i++) variance += (x[i * f + j] - mean) ** 2;
    variance /= n;
    for (let i = 0; i < n; i++) y[i * f + j] = (gamma[j] * (x[i * f + j] - mean)) / Math.sqrt(variance + eps) + beta[j];
  }
  return y;
}

test('BatchNorm1d: batch statistics in training, running averages in eval, matches the float64 oracle', () => {
  const rng = new Rng(3);
  for (const [n, f] of [[7, 5], [2, 1], [33, 9]]) {
    const bn = new BatchNorm1d(f);
    for (let j = 0; j < f; j++) {
      bn.gamma!.data[j] = 0.5 + 0.25 * j;
      bn.beta!.data[j] = 0.1 * j - 0.3;
    }
    const x = rng.fillNormal(new Float32Array(n * f), 2, 3);
    const y = bn.forward(new ag.Var(new Tensor(x, [n, f]))).data;
    const want = batchNormReference(Float64Array.from(x), n, f, Float64Array.from(bn.gamma!.data), Float64Array.from(bn.beta!.data), bn.eps);
    for (let i = 0; i < y.length; i++) assert.ok(Math.abs(y[i] - want[i]) < 1e-4, `[${n}, ${f}] value ${i}: ${y[i]} vs ${want[i]}`);
    // One training step moves the running mean 10% of the way to the batch mean (from 0).
    let mean0 = 0;
    for (let i = 0; i < n; i++) mean0 += x[i * f];
    mean0 /= n;
    assert.ok(Math.abs(bn.runningMean[0] - 0.1 * mean0) < 1e-9);
    bn.eval();
    const z = noGrad(() => bn.forward(new ag.Var(new Tensor(x, [n, f])))).data;
    const k = bn.gamma!.data[0] / Math.sqrt(bn.runningVar[0] + bn.eps);
    assert.ok(Math.abs(z[0] - ((x[0] - bn.runningMean[0]) * k + bn.beta!.data[0])) < 1e-4, 'eval mode uses the running statistics');
    const [k0, c0] = bn.evalMap(0);
    assert.ok(Math.abs(z[0] - (k0 * x[0] + c0)) < 1e-4, 'evalMap is the eval-mode map');
  }
});

test('BatchNorm1d without affine: a fixed scale, no parameters, and its input gradient', () => {
  const rng = new Rng(11);
  const n = 9, f = 4;
  const bn = new BatchNorm1d(f, { affine: false, scale: 1.7 });
  assert.is(bn.parameters().length, 0);
  const x = rng.fillNormal(new Float32Array(n * f), -1, 2);
  const xv = new ag.Var(new Tensor(x.slice(), [n, f]), { requiresGrad: true });
  const w = rng.fillNormal(new Float32Array(n * f));
  const y = bn.forward(xv);
  const g = new Float64Array(f).fill(1.7), b = new Float64Array(f);
  const want = batchNormReference(Float64Array.from(x), n, f, g, b, bn.eps);
  for (let i = 0; i < y.data.length; i++) assert.ok(Math.abs(y.data[i] - want[i]) < 1e-4);
  ag.backward(y, new Tensor(w, [n, f]));
  const x64 = Float64Array.from(x);
  const h = 1e-6;
  for (let i = 0; i < n * f; i++) {
    const keep = x64[i];
    const at = (v: number) => {
      x64[i] = v;
      const r = batchNormReference(x64, n, f, g, b, bn.eps);
      x64[i] = keep;
      return r.reduce((s, v2, k) => s + v2 * w[k], 0);
    };
    const numeric = (at(keep + h) - at(keep - h)) / (2 * h);
    assert.ok(Math.abs(xv.grad!.data[i] - numeric) <= 2e-3 * (1 + Math.abs(numeric)), `dx[${i}]: ${xv.grad!.data[i]} vs ${numeric}`);
  }
  assertFails(() => new BatchNorm1d(3, { scale: 2 }), /options.scale only with options.affine false/, 'scale with affine');
  assertFails(() => new BatchNorm1d(3, { affine: false, scale: 0 }), /positive number for options.scale/, 'scale 0');
});

test('BatchNorm1d { centreOnly }: subtracts the batch mean only; gradient by finite differences; eval map', () => {
  const rng = new Rng(23);
  for (const [n, f] of [[9, 4], [2, 3], [17, 6]]) {
    const bn = new BatchNorm1d(f, { affine: false, centreOnly: true });
    assert.is(bn.parameters().length, 0);
    const x = rng.fillNormal(new Float32Array(n * f), 1.5, 3);
    const xv = new ag.Var(new Tensor(x.slice(), [n, f]), { requiresGrad: true });
    const y = bn.forward(xv);
    const centred = (xs: Float64Array) => {
      const out = new Float64Array(n * f);
      for (let j = 0; j < f; j++) {
        let m = 0;
        for (let i = 0; i < n; i++) m += xs[i * f + j];
        for (let i = 0; i < n; i++) out[i * f + j] = xs[i * f + j] - m / n;
      }
      return out;
    };
    const x64 = Float64Array.from(x);
    const want = centred(x64);
    for (let i = 0; i < y.data.length; i++) assert.ok(Math.abs(y.data[i] - want[i]) < 1e-5, `[${n}, ${f}] value ${i}`);
    const w = rng.fillNormal(new Float32Array(n * f));
    ag.backward(y, new Tensor(w, [n, f]));
    const h = 1e-6;
    for (let i = 0; i < n * f; i++) {
      const keep = x64[i];
      const at = (v: number) => {
        x64[i] = v;
        const r = centred(x64).reduce((s2, v2, k) => s2 + v2 * w[k], 0);
        x64[i] = keep;
        return r;
      };
      const numeric = (at(keep + h) - at(keep - h)) / (2 * h);
      assert.ok(Math.abs(xv.grad!.data[i] - numeric) <= 1e-4 * (1 + Math.abs(numeric)), `[${n}, ${f}] dx[${i}]: ${xv.grad!.data[i]} vs ${numeric}`);
    }
    bn.eval();
    const z = noGrad(() => bn.forward(new ag.Var(new Tensor(x, [n, f])))).data;
    for (let j = 0; j < f; j++) {
      assert.equal(bn.evalMap(j), [1, -bn.runningMean[j]]);
      assert.ok(Math.abs(z[j] - (x[j] - bn.runningMean[j])) < 1e-5, `eval value ${j}`);
    }
  }
  assertFails(() => new BatchNorm1d(3, { centreOnly: true }), /centreOnly with options.affine false and no options.scale/, 'centreOnly with affine');
  assertFails(() => new BatchNorm1d(3, { affine: false, scale: 2, centreOnly: true }), /centreOnly with options.affine false and no options.scale/, 'centreOnly with scale');
  assertFails(() => new BatchNorm1d(3, { affine: false, centreOnly: 1 as unknown as boolean }), /boolean for options.centreOnly/, 'centreOnly type');
});

test('BatchNorm1d: gradients of input, gamma and beta match float64 finite differences', () => {
  const rng = new Rng(5);
  for (const [n, f] of [[7, 5], [3, 2], [16, 3]]) {
    const bn = new BatchNorm1d(f);
    for (let j = 0; j < f; j++) {
      bn.gamma!.data[j] = 0.7 + 0.2 * j;
      bn.beta!.data[j] = -0.2 + 0.1 * j;
    }
    const x = rng.fillNormal(new Float32Array(n * f));
    const w = rng.fillNormal(new Float32Array(n * f));
    const xv = new ag.Var(new Tensor(x.slice(), [n, f]), { requiresGrad: true });
    bn.zeroGrad();
    ag.backward(bn.forward(xv), new Tensor(w, [n, f]));
    const loss = (xs: Float64Array, g: Float64Array, b: Float64Array) => {
      const y = batchNormReference(xs, n, f, g, b, bn.eps);
      let s = 0;
      for (let i = 0; i < y.length; i++) s += y[i] * w[i];
      return s;
    };
    const x64 = Float64Array.from(x), g64 = Float64Array.from(bn.gamma!.data), b64 = Float64Array.from(bn.beta!.data);
    const h = 1e-6;
    const numeric = (v: Float64Array, i: number) => {
      const keep = v[i];
      v[i] = keep + h;
      const up = loss(x64, g64, b64);
      v[i] = keep - h;
      const down = loss(x64, g64, b64);
      v[i] = keep;
      return (up - down) / (2 * h);
    };
    const close = (got: number, want: number, what: string) => assert.ok(Math.abs(got - want) <= 2e-3 * (1 + Math.abs(want)), `[${n}, ${f}] ${what}: ${got} vs ${want}`);
    for (let i = 0; i < n * f; i++) close(xv.grad!.data[i], numeric(x64, i), `dx[${i}]`);
    for (let j = 0; j < f; j++) {
      close(bn.gamma!.grad!.data[j], numeric(g64, j), `dgamma[${j}]`);
      close(bn.beta!.grad!.data[j], numeric(b64, j), `dbeta[${j}]`);
    }
  }
});

test('DclS { codeNorm }: foldedStateDict gives a plain DclS with the same eval outputs', () => {
  const rng = new Rng(7);
  const options = { codeDims: 6, inputShape: [1, 16, 16] as [number, number, number], channels: [4, 5], hidden: 12, seed: 2 };
  const net = new DclS({ ...options, codeNorm: 1.7 });
  assert.equal(net.namedParameters().map(([name]) => name), new DclS(options).namedParameters().map(([name]) => name), 'the norm has no parameters');
  const x = rng.fillNormal(new Float32Array(20 * 256));
  // In training, every output's pre-sigmoid values have the batch spread codeNorm.
  const first = net.forward(new ag.Var(new Tensor(x, [20, 1, 16, 16]))).data;
  for (let j = 0; j < 6; j++) {
    const z = Array.from({ length: 20 }, (_, i) => Math.log(first[i * 6 + j] / (1 - first[i * 6 + j])));
    const m = z.reduce((a, v) => a + v, 0) / 20;
    const sd = Math.sqrt(z.reduce((a, v) => a + (v - m) ** 2, 0) / 20);
    assert.ok(Math.abs(m) < 1e-3 && Math.abs(sd - 1.7) < 1e-2, `output ${j}: mean ${m}, std ${sd}`);
  }
  for (let step = 0; step < 25; step++) net.forward(new ag.Var(new Tensor(x, [20, 1, 16, 16])));
  net.eval();
  const want = noGrad(() => net.forward(new ag.Var(new Tensor(x, [20, 1, 16, 16])))).data;
  const folded = net.foldedStateDict();
  assert.equal(Object.keys(folded).sort(), Object.keys(new DclS(options).stateDict()).sort());
  const plain = new DclS(options);
  plain.loadStateDict(folded);
  plain.eval();
  const got = noGrad(() => plain.forward(new ag.Var(new Tensor(x, [20, 1, 16, 16])))).data;
  for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i] - want[i]) < 1e-5, `output ${i}: ${got[i]} vs ${want[i]}`);
  // The same for codeCentre: the folded plain network gives the eval outputs.
  const centred = new DclS({ ...options, codeCentre: true });
  assert.is(centred.codeCentre, true);
  for (let step = 0; step < 25; step++) centred.forward(new ag.Var(new Tensor(x, [20, 1, 16, 16])));
  centred.eval();
  const wantCentred = noGrad(() => centred.forward(new ag.Var(new Tensor(x, [20, 1, 16, 16])))).data;
  const plainCentred = new DclS(options);
  plainCentred.loadStateDict(centred.foldedStateDict());
  plainCentred.eval();
  const gotCentred = noGrad(() => plainCentred.forward(new ag.Var(new Tensor(x, [20, 1, 16, 16])))).data;
  for (let i = 0; i < wantCentred.length; i++) assert.ok(Math.abs(gotCentred[i] - wantCentred[i]) < 1e-5, `centred output ${i}`);
  assertFails(() => new DclS({ ...options, codeCentre: true, codeNorm: 1 }), /codeCentre or options.codeNorm > 0, not both/, 'both');
  assertFails(() => new DclS({ ...options, codeCentre: 'yes' as unknown as boolean }), /boolean for options.codeCentre/, 'codeCentre type');
  // Without batch norm the folded state is the state.
  const none = new DclS(options);
  assert.equal(Object.keys(none.foldedStateDict()), Object.keys(none.stateDict()));
  assertFails(() => new DclS({ ...options, codeNorm: -1 }), /from 0 to 100 for options.codeNorm/, 'codeNorm range');
  assertFails(() => new BatchNorm1d(3).forward(new ag.Var(new Tensor(new Float32Array(8), [2, 4]))), /Expected \[N, 3\] for x/, 'BatchNorm1d shape');
});

test('train() with network.codeNorm: saves a plain DCL-S whose codes survive save and load', async () => {
  const faces = syntheticFaces({ identities: 12, imagesPerIdentity: 4, size: 32, seed: 4 });
  const model = await train({ data: faces, layout: '8x4', steps: 6, identitiesPerBatch: 4, network: { channels: [4, 8], hidden: 16, codeNorm: 1.7 }, seed: 3 });
  assert.is(model.network.codeNorm, 0, 'the trained model is the folded plain network');
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'dcl-bn-')), 'm.safetensors');
  await model.save(file);
  const again = await loadModel(file);
  assert.equal(Array.from(again.codesOf(faces.images, 48)), Array.from(model.codesOf(faces.images, 48)));
  // The codes spread: the normalisation keeps the code layer's outputs apart.
  assert.ok(new Set(model.codesOf(faces.images, 48)).size > 12);
});

test('network.codeNormEnd: the spread rises geometrically from codeNorm to codeNormEnd, and the network follows it', () => {
  const settings = { network: { codeNorm: 1.5, codeNormEnd: 6 } };
  assert.is(codeNormAt(settings, 0, 11), 1.5);
  assert.ok(Math.abs(codeNormAt(settings, 5, 11)! - 3) < 1e-12, 'halfway is the geometric mean');
  assert.ok(Math.abs(codeNormAt(settings, 10, 11)! - 6) < 1e-12);
  assert.is(codeNormAt(settings, 0, 1), 6, 'one step: the end value');
  assert.is(codeNormAt({ network: { codeNorm: 1.5 } }, 3, 11), null, 'no schedule');
  assert.is(codeNormAt({ network: { codeNorm: 0, codeNormEnd: 6 } }, 3, 11), null, 'no normalisation');
  const net = new DclS({ codeDims: 4, inputShape: [1, 16, 16], channels: [3, 4], hidden: 8, seed: 1, codeNorm: 1.5 });
  net.setCodeNorm(2.5);
  const x = new Rng(2).fillNormal(new Float32Array(12 * 256));
  const out = net.forward(new ag.Var(new Tensor(x, [12, 1, 16, 16]))).data;
  const z = Array.from({ length: 12 }, (_, i) => Math.log(out[i * 4] / (1 - out[i * 4])));
  const m = z.reduce((a, v) => a + v, 0) / 12;
  assert.ok(Math.abs(Math.sqrt(z.reduce((a, v) => a + (v - m) ** 2, 0) / 12) - 2.5) < 2e-2, 'the batch spread is the new value');
  assertFails(() => new DclS({ codeDims: 4, inputShape: [1, 16, 16], channels: [3, 4], hidden: 8 }).setCodeNorm(2), /built with options.codeNorm > 0/, 'no norm');
  assertFails(() => net.setCodeNorm(0), /above 0 and at most 100 for spread/, 'spread 0');
  // A scheduled run trains and saves the plain network folded at the last spread.
  const faces = syntheticFaces({ identities: 8, imagesPerIdentity: 3, size: 32, seed: 5 });
  const model = trainSync({ data: faces, layout: '16x1', method: 'dp', roundingWarmup: 0, steps: 4, identitiesPerBatch: 4, network: { channels: [4, 8], hidden: 16, codeNormEnd: 5 }, seed: 2 });
  assert.is(model.network.codeNorm, 0);
  assert.is((model.training as { network: { codeNormEnd?: number } }).network.codeNormEnd, 5, 'the schedule is in the training record');
});

test('hardNegativeWeights: all same pairs, the closest fraction of different pairs, half the weight each', () => {
  const owner = Int32Array.from([0, 0, 1, 1, 2, 3, 3]);
  const batch = makeAllPairs(Int32Array.from({ length: 7 }, (_, i) => i), owner);
  const dims = 3;
  const features = new Rng(9).fillUniform(new Float32Array(7 * dims), 0, 1);
  const all = hardNegativeWeights(features, dims, batch, 1);
  for (let k = 0; k < all.length; k++) assert.ok(Math.abs(all[k] - batch.weights[k]) < 1e-7, 'fraction 1 keeps makeAllPairs weights');
  const w = hardNegativeWeights(features, dims, batch, 0.25);
  const distance = (k: number) => {
    let d = 0;
    for (let i = 0; i < dims; i++) d += Math.abs(features[batch.pairs[2 * k] * dims + i] - features[batch.pairs[2 * k + 1] * dims + i]);
    return d;
  };
  const negatives = [...batch.labels.keys()].filter((k) => batch.labels[k] > 0).sort((a, b) => distance(a) - distance(b));
  const keep = Math.ceil(0.25 * negatives.length);
  negatives.forEach((k, rank) => assert.is(w[k] > 0, rank < keep, `negative of rank ${rank}`));
  let same = 0, different = 0;
  batch.labels.forEach((l, k) => (l < 0 ? (same += w[k]) : (different += w[k])));
  assert.ok(Math.abs(same - 0.5) < 1e-6 && Math.abs(different - 0.5) < 1e-6);
});

test('train() validates hardNegatives, network.codeNorm, network.codeNormEnd and network.gain', async () => {
  const faces = syntheticFaces({ identities: 4, imagesPerIdentity: 2, size: 32, seed: 1 });
  const cases: [Record<string, unknown>, RegExp][] = [
    ...[0, 1.5, -1, Number.NaN].map((bad): [Record<string, unknown>, RegExp] => [{ hardNegatives: bad }, /options.hardNegatives/]),
    ...[-1, 101, 'on'].map((bad): [Record<string, unknown>, RegExp] => [{ network: { codeNorm: bad } }, /options.network.codeNorm/]),
    ...[0, -1, 101, 'x'].map((bad): [Record<string, unknown>, RegExp] => [{ network: { codeNorm: 1.7, codeNormEnd: bad } }, /options.network.codeNormEnd/]),
    [{ network: { codeNorm: 0, codeNormEnd: 4 } }, /codeNormEnd only with code normalisation/],
    [{ network: { codeCentre: 1 } }, /boolean for options.network.codeCentre/],
    [{ network: { codeCentre: true, codeNorm: 1.7 } }, /codeCentre or options.network.codeNorm > 0, not both/],
    ...[0, -2, Number.POSITIVE_INFINITY].map((bad): [Record<string, unknown>, RegExp] => [{ network: { gain: bad } }, /options.network.gain/]),
  ];
  for (const [extra, pattern] of cases)
    await train({ data: faces, steps: 1, ...extra }).then(
      () => assert.unreachable(`${JSON.stringify(extra)} was accepted`),
      (e) => {
        assert.is(e.code, 'E_ARG');
        assert.match(e.message, pattern);
      },
    );
});

test.run();
