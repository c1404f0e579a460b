// Train DCL-S on a generated face set, encode, save, load and encode again: the codes must match.
// Run from the package root after `npm install`: node examples/quickstart.mjs
import { syntheticFaces, train, encode, loadModel } from 'dcl-native';

const data = syntheticFaces({ identities: 60, imagesPerIdentity: 6, size: 64, seed: 1 });
const model = await train({
  data,
  layout: '8x4',
  method: 'rounding',
  steps: 300,
  identitiesPerBatch: 16,
  imagesPerIdentity: 4,
  learningRate: 2e-4,
  progressEvery: 50,
  onProgress: (p) => console.log(`step ${p.step}/${p.totalSteps}  loss ${p.loss.toFixed(4)}  ${p.imagesPerSecond.toFixed(0)} img/s`),
});
const codes = await encode(model, data);
await model.save('quickstart.safetensors');
const again = await encode(await loadModel('quickstart.safetensors'), data);
const same = codes.every((c, i) => c === again[i]);
console.log(`${codes.length} codes, ${new Set(codes).size} distinct, identical after save/load: ${same}`);
if (!same) process.exit(1);
