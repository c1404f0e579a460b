import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { IdentityBatchSampler, makeAllPairs } from '../lib/sampling.js';
import { syntheticFaces } from '../lib/synthetic.js';
import { DclError } from '../lib/errors.js';

function lcg(seed: number) {
  let s = seed >>> 0;
  return { uniform: () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296) };
}

test('makeAllPairs: every pair once, labels from identities, half the weight on each group', () => {
  const b = makeAllPairs(Int32Array.from([10, 11, 12, 13, 14]), Int32Array.from([0, 0, 1, 1, 2]));
  assert.is(b.pairs.length, 2 * 10);
  assert.is(b.sameCount, 2);
  assert.is(b.differentCount, 8);
  let same = 0, diff = 0;
  for (let k = 0; k < 10; k++) (b.labels[k] < 0 ? (same += b.weights[k]) : (diff += b.weights[k]));
  assert.ok(Math.abs(same - 0.5) < 1e-6 && Math.abs(diff - 0.5) < 1e-6);
  assert.is(b.labels[0], -1); // (0, 1) same person
  assert.is(b.labels[1], 1); // (0, 2) different
});

test('IdentityBatchSampler: P x K images from people with pairs, plus singles as negatives', () => {
  const labels = Int32Array.from([0, 0, 0, 1, 1, 2, 3, 3, 3, 3, 4, 5, 5]);
  const sampler = new IdentityBatchSampler(labels, 3, 2, 1, lcg(7));
  assert.is(sampler.identitiesWithPairs, 4);
  for (let i = 0; i < 20; i++) {
    const b = sampler.next();
    assert.is(b.images.length, 3 * 2 + 1);
    const ids = Array.from(b.images.subarray(0, 6), (im) => labels[im]);
    assert.is(new Set(ids).size, 3, 'three identities');
    assert.is(b.sameCount, 3, 'one same pair per identity with K = 2');
    assert.ok([2, 4].includes(labels[b.images[6]]), 'the extra image is from a person with one image');
  }
});

test('syntheticFaces: shapes, labels, normalisation, determinism, validation', () => {
  const a = syntheticFaces({ identities: 3, imagesPerIdentity: 2, size: 16, seed: 5 });
  const b = syntheticFaces({ identities: 3, imagesPerIdentity: 2, size: 16, seed: 5 });
  assert.equal(a.shape, [1, 16, 16]);
  assert.equal(Array.from(a.labels), [0, 0, 1, 1, 2, 2]);
  assert.equal(a.images, b.images);
  const img = a.images.subarray(0, 256);
  const mean = img.reduce((s, v) => s + v, 0) / 256;
  const std = Math.sqrt(img.reduce((s, v) => s + (v - mean) ** 2, 0) / 256);
  assert.ok(Math.abs(mean) < 1e-4 && Math.abs(std - 1) < 1e-3);
  // Same person closer than different people on average (identity structure).
  const big = syntheticFaces({ identities: 6, imagesPerIdentity: 4, size: 32, seed: 2, noise: 0.05 });
  const px = 32 * 32;
  const dist = (i: number, j: number) => {
    let s = 0;
    for (let k = 0; k < px; k++) s += (big.images[i * px + k] - big.images[j * px + k]) ** 2;
    return s;
  };
  let same = 0, sameN = 0, diff = 0, diffN = 0;
  for (let i = 0; i < 24; i++)
    for (let j = i + 1; j < 24; j++)
      if (big.labels[i] === big.labels[j]) (same += dist(i, j), sameN++);
      else (diff += dist(i, j), diffN++);
  assert.ok(same / sameN < diff / diffN, `same ${same / sameN} vs different ${diff / diffN}`);
  assert.throws(() => syntheticFaces({ identities: 0 }), (e: unknown) => e instanceof DclError && e.code === 'E_ARG');
  assert.throws(() => syntheticFaces({ size: 2.5 }), (e: unknown) => e instanceof DclError && /for size/.test((e as Error).message));
});

test.run();
