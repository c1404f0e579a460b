// The `dcl` command: option parsing, help, exit codes, and each command end to end on small
// generated fixtures (a folder of PNG faces, one sub-folder per person, and a tiny LFW tree).
// Trainings here run a handful of steps: they check the plumbing, not accuracy.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { commandHelp, main, parseOptions, UsageError } from '../lib/cli.js';
import type { Output } from '../lib/cli.js';
import { COMMANDS } from '../lib/commands.js';
import { binOccupancy } from '../lib/demo.js';
import { trainingNote } from '../lib/reproduce.js';
import { checkTrainOptions } from '../lib/train.js';
import { loadModel, loadModelSync } from '../lib/model.js';
import { syntheticFaces } from '../lib/synthetic.js';

const test = suite('cli');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dcl-cli-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

function capture(): Output & { stdout: string[]; stderr: string[]; progressLines: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const progressLines: string[] = [];
  return {
    stdout,
    stderr,
    progressLines,
    print: (l) => void stdout.push(l),
    progress: (l) => void progressLines.push(l),
    endProgress: () => undefined,
    note: (l) => void stderr.push(l),
  };
}

async function run(...argv: string[]) {
  const out = capture();
  const code = await main(argv, COMMANDS, out);
  return { code, stdout: out.stdout.join('\n'), stderr: out.stderr.join('\n'), progress: out.progressLines };
}

/** Synthetic faces written as 8-bit PNG files: <dir>/<Person>/<Person>_NNNN.png (the LFW layout). */
async function writeFaces(dir: string, identities: number, perIdentity: number, ext = 'png'): Promise<string[]> {
  const faces = syntheticFaces({ identities, imagesPerIdentity: perIdentity, size: 64, seed: 7 });
  const files: string[] = [];
  for (let i = 0; i < faces.labels.length; i++) {
    const name = `Person_${String(faces.labels[i]).padStart(2, '0')}`;
    const index = (i % perIdentity) + 1;
    const img = faces.images.subarray(i * 4096, (i + 1) * 4096);
    let lo = Infinity, hi = -Infinity;
    for (const v of img) (lo = Math.min(lo, v)), (hi = Math.max(hi, v));
    const raw = Uint8Array.from(img, (v) => Math.round((255 * (v - lo)) / (hi - lo || 1)));
    const file = path.join(dir, name, `${name}_${String(index).padStart(4, '0')}.${ext}`);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    await sharp(raw, { raw: { width: 64, height: 64, channels: 1 } }).png().toFile(file);
    files.push(file);
  }
  return files;
}

test('parseOptions: types, --no-, =value, positional, errors', () => {
  const spec = {
    n: { type: 'int', help: '' },
    x: { type: 'number', help: '' },
    s: { type: 'string', help: '' },
    b: { type: 'boolean', help: '' },
  } as const;
  const r = parseOptions(['a', '--n', '3', '--x=0.5', '--s', 'hi', '--no-b', '--', '--n'], spec);
  assert.equal(r.options, { n: 3, x: 0.5, s: 'hi', b: false });
  assert.equal(r.positional, ['a', '--n']);
  assert.ok(parseOptions(['-h'], spec).help);
  for (const bad of [['--n', '1.5'], ['--n'], ['--x', 'abc'], ['--zzz'], ['--b=1'], ['--n', '--x']])
    assert.throws(() => parseOptions(bad, spec), (e: unknown) => e instanceof UsageError, bad.join(' '));
});

test('help for every command; unknown command and bad options exit 2', async () => {
  const overview = await run('--help');
  assert.is(overview.code, 0);
  for (const c of COMMANDS) {
    assert.ok(overview.stdout.includes(c.name), c.name);
    const h = await run(c.name, '--help');
    assert.is(h.code, 0);
    assert.ok(h.stdout.startsWith(`usage: dcl ${c.name}`), c.name);
    assert.ok(commandHelp(c).includes('--help'));
  }
  assert.is((await run()).code, 2);
  const unknown = await run('frobnicate');
  assert.is(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command 'frobnicate'/);
  const bad = await run('demo', '--steps', 'many');
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /--steps needs an integer/);
  assert.is((await run('train')).code, 2); // neither --data nor --lfw
  assert.is((await run('encode', 'x.png')).code, 2); // no --model
});

test('a DclError is a message and exit code 1, never a stack trace', async () => {
  const r = await run('encode', '--model', path.join(tmp, 'missing.safetensors'), 'x.png');
  assert.is(r.code, 1);
  assert.match(r.stderr, /error E_IO/);
  assert.not.match(r.stderr, /\n\s+at /);
  const lfw = await run('reproduce', '--lfw', path.join(tmp, 'no-such-lfw'), '--epochs', '1');
  assert.is(lfw.code, 1);
  assert.match(lfw.stderr, /error E_IO/);
});

test('train --data FOLDER, then encode files and a folder: codes agree', async () => {
  const faces = path.join(tmp, 'faces');
  const files = await writeFaces(faces, 6, 4);
  const model = path.join(tmp, 'm.safetensors');
  const cache = path.join(tmp, 'cache');
  const t = await run('train', '--data', faces, '--layout', '8x4', '--steps', '3', '--augment', '--cache', cache, '--out', model);
  assert.is(t.code, 0, t.stderr);
  assert.match(t.stdout, /trained 8x4 \(rounding\)/);
  // The last progress line: the step, the loss and the batch's distinct codes.
  assert.match(t.progress[t.progress.length - 1], /^training step 3\/3 \(epoch \d+\)  loss \d\.\d{4}  codes \d+  \d+ img\/s$/);
  const m = await loadModel(model);
  assert.is(m.layout.name, '8x4');
  assert.ok((m.preprocessing as unknown as { storedSize: unknown }).storedSize !== null);

  const one = await run('encode', '--model', model, files[0], files[5]);
  assert.is(one.code, 0, one.stderr);
  const lines = one.stdout.split('\n');
  assert.is(lines.length, 2);
  const [file, code, hex] = lines[0].split('\t');
  assert.is(file, files[0]);
  assert.is((Number(code) >>> 0).toString(16).padStart(8, '0'), hex);

  const out = path.join(tmp, 'codes.json');
  const all = await run('encode', '--model', model, '--format', 'json', '--out', out, faces);
  assert.is(all.code, 0, all.stderr);
  const doc = JSON.parse(fs.readFileSync(out, 'utf8')) as { layout: string; codes: { file: string; code: number }[] };
  assert.is(doc.layout, '8x4');
  assert.is(doc.codes.length, files.length);
  const byFile = new Map(doc.codes.map((c) => [c.file, c.code]));
  assert.is(byFile.get(files[0]), Number(code));
});

test('demo runs end to end and writes its report', async () => {
  const out = path.join(tmp, 'demo');
  const r = await run('demo', '--steps', '3', '--identities', '12', '--out', out);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /verification accuracy, 10 folds/);
  for (const f of ['report.md', 'report.json', 'model.safetensors']) assert.ok(fs.existsSync(path.join(out, f)), f);
  const json = JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8'));
  assert.ok(json.test.accuracy.mean >= 0 && json.test.accuracy.mean <= 1);
});

test('binOccupancy counts bins and bins shared between people', () => {
  const codes = Int32Array.of(1, 1, 2, 3, 3, 3);
  const labels = Int32Array.of(0, 0, 1, 2, 2, 3);
  const b = binOccupancy(codes, labels, 8);
  assert.is(b.occupied, 3);
  assert.is(b.largest, 3);
  assert.is(b.sharedWithOthers, 3 / 6);
  assert.is(b.fractionOfAllBins, 3 / 256);
});

/** A tiny LFW tree: 2 people sets / folds, View 1 files, images as JPEG. */
async function writeTinyLfw(root: string): Promise<void> {
  const images = path.join(root, 'images_deepfunneled');
  await writeFaces(images, 8, 4);
  // writeFaces wrote PNGs; LFW names .jpg files: convert.
  for (const person of fs.readdirSync(images))
    for (const f of fs.readdirSync(path.join(images, person))) {
      const src = path.join(images, person, f);
      await sharp(src).resize(250, 250).jpeg().toFile(src.replace(/\.png$/, '.jpg'));
      fs.rmSync(src);
    }
  const p = (i: number) => `Person_${String(i).padStart(2, '0')}`;
  fs.writeFileSync(path.join(root, 'people.txt'), ['2', '4', ...[0, 1, 2, 3].map((i) => `${p(i)}\t4`), '4', ...[4, 5, 6, 7].map((i) => `${p(i)}\t4`), ''].join('\n'));
  const fold = (a: number, b: number) => [`${p(a)}\t1\t2`, `${p(b)}\t3\t4`, `${p(a)}\t1\t${p(b)}\t2`, `${p(b)}\t1\t${p(a)}\t3`];
  fs.writeFileSync(path.join(root, 'pairs.txt'), ['2\t2', ...fold(0, 1), ...fold(4, 5), ''].join('\n'));
  fs.writeFileSync(path.join(root, 'peopleDevTrain.txt'), ['4', ...[0, 1, 2, 3].map((i) => `${p(i)}\t4`), ''].join('\n'));
  fs.writeFileSync(path.join(root, 'peopleDevTest.txt'), ['4', ...[4, 5, 6, 7].map((i) => `${p(i)}\t4`), ''].join('\n'));
  const same = [4, 5, 6, 7].flatMap((i) => [`${p(i)}\t1\t2`, `${p(i)}\t3\t4`]);
  const diff = [4, 5, 6, 7].flatMap((i) => [`${p(i)}\t1\t${p(((i - 3) % 4) + 4)}\t2`, `${p(i)}\t3\t${p(((i - 2) % 4) + 4)}\t4`]);
  fs.writeFileSync(path.join(root, 'pairsDevTest.txt'), [String(same.length), ...same, ...diff, ''].join('\n'));
  fs.mkdirSync(path.join(root, 'gender'), { recursive: true });
  const files = (list: number[]) => list.flatMap((i) => [1, 2, 3, 4].map((k) => `${p(i)}_000${k}.jpg`)).join('\r\n') + '\r\n';
  fs.writeFileSync(path.join(root, 'gender', 'male_names.txt'), files([0, 2, 4, 6]));
  fs.writeFileSync(path.join(root, 'gender', 'female_names.txt'), files([1, 3, 5, 7]));
  fs.writeFileSync(path.join(root, 'lfw-names.txt'), [0, 1, 2, 3, 4, 5, 6, 7].map((i) => `${p(i)}\t4`).join('\n') + '\n');
  fs.writeFileSync(path.join(root, 'pairsDevTrain.txt'), ['1', `${p(0)}\t1\t2`, `${p(0)}\t1\t${p(1)}\t1`, ''].join('\n'));
}

test("reproduce's row-specific training note names the defaults each method and layout chose", () => {
  const data = syntheticFaces({ identities: 3, imagesPerIdentity: 2, size: 32, seed: 1 });
  const note = (extra: Record<string, unknown>) => trainingNote(checkTrainOptions({ data, ...extra }).settings as unknown as Record<string, unknown>);
  assert.is(note({ layout: '32x1', method: 'dp' }), "rounding warm-up for the first 50% of the steps, then the DP's loss 0.5 + the rounding loss 0.5");
  assert.is(note({ layout: '32x1', method: 'dp', roundingShare: 0 }), 'rounding warm-up for the first 50% of the steps');
  assert.is(note({ layout: '32x1', method: 'dp', roundingShare: 0.7 }), "rounding warm-up for the first 50% of the steps, then the DP's loss 0.3 + the rounding loss 0.7");
  assert.is(note({ layout: '32x1', method: 'dp', roundingWarmup: 0, roundingShare: 0 }), 'code normalisation 1.7 rising to 6');
  assert.is(note({ layout: '4x8' }), 'code normalisation 1.7 rising to 6');
  assert.is(note({ layout: '32x1', method: 'std' }), 'omega 0.01');
  assert.is(note({ layout: '8x4' }), '');
  assert.is(note({ layout: '8x4', data: { ...data, attributes: Int32Array.from(data.labels, (l) => l % 2) } }), 'attribute term weight 1');
  assert.is(note({ layout: '8x4', network: { codeNorm: 2 } }), 'code normalisation 2', 'a given codeNorm stays constant');
  assert.is(note({ layout: '32x1', method: 'dp', roundingWarmup: 0, roundingShare: 0, network: { codeNorm: 0 } }), '');
  // A model the collapse guard trained again: model.training holds the settings of the run that finished.
  const restarted = { ...checkTrainOptions({ data, layout: '8x4', alphaBetaLearningRate: 1e-3 }).settings, restarts: [{ collapsedAtStep: 255, alphaBetaLearningRate: 0.01, learningRate: 2e-4 }] };
  assert.is(trainingNote(restarted as unknown as Record<string, unknown>), 'trained again after a collapse at step 255 (alpha / beta learning rate 0.001, learning rate 0.0002)');
});

test('train --lfw, eval and reproduce on a tiny LFW tree', async () => {
  const root = path.join(tmp, 'lfw');
  await writeTinyLfw(root);
  const cache = path.join(tmp, 'lfw-cache');
  const model = path.join(tmp, 'lfw.safetensors');
  const t = await run('train', '--lfw', root, '--steps', '2', '--layout', '16x2', '--cache', cache, '--out', model);
  assert.is(t.code, 0, t.stderr);
  assert.is(loadModelSync(model).encoding.mirrorAverage, false);
  const mirrored = path.join(tmp, 'lfw-mirror.safetensors');
  const tm = await run('train', '--lfw', root, '--steps', '1', '--layout', '16x2', '--mirror', '--cache', cache, '--out', mirrored);
  assert.is(tm.code, 0, tm.stderr);
  assert.is(loadModelSync(mirrored).encoding.mirrorAverage, true);
  // --gender: the attribute term with the gender lists' labels.
  const gendered = path.join(tmp, 'lfw-gender.safetensors');
  const tg = await run('train', '--lfw', root, '--steps', '2', '--layout', '8x4', '--gender', '--cache', cache, '--out', gendered);
  assert.is(tg.code, 0, tg.stderr);
  assert.match(tg.stderr + tg.stdout, /gender term: 16 of 16 images labelled/);
  assert.is(loadModelSync(gendered).training.attributeWeight, 1);
  const tgw = await run('train', '--lfw', root, '--steps', '1', '--layout', '8x4', '--gender', '--gender-weight', '0.3', '--alpha-beta-learning-rate', '0.002', '--cache', cache, '--out', gendered);
  assert.is(tgw.code, 0, tgw.stderr);
  assert.is(loadModelSync(gendered).training.attributeWeight, 0.3);
  assert.is(loadModelSync(gendered).training.alphaBetaLearningRate, 0.002);
  assert.is(loadModelSync(model).training.alphaBetaLearningRate, 0.01, 'the default');
  const tgwBad = await run('train', '--lfw', root, '--steps', '1', '--gender-weight', '0.3', '--cache', cache, '--out', gendered);
  assert.is(tgwBad.code, 2, tgwBad.stderr);
  assert.match(tgwBad.stderr, /--gender-weight needs --gender/);
  const tgBad = await run('train', '--data', root, '--steps', '2', '--gender');
  assert.is(tgBad.code, 2, tgBad.stderr);
  assert.match(tgBad.stderr, /--gender needs --lfw/);
  const e = await run('eval', '--model', model, '--lfw', root, '--cache', cache);
  assert.is(e.code, 0, e.stderr);
  assert.match(e.stdout, /pairs: 8 same, 8 different/);
  assert.match(e.stdout, /accuracy \d+\.\d% \+- /);
  // --versus: a model against itself agrees on every pair; against another, the McNemar line.
  const self = await run('eval', '--model', model, '--versus', model, '--lfw', root, '--cache', cache);
  assert.is(self.code, 0, self.stderr);
  assert.match(self.stdout, /pair by pair \(16 pairs\): only the first model right on 0, only the second on 0; difference 0\.0 points, exact McNemar p 1\.0/);
  const vs = await run('eval', '--model', model, '--versus', gendered, '--lfw', root, '--cache', cache);
  assert.is(vs.code, 0, vs.stderr);
  assert.match(vs.stdout, /versus [^\n]*: 8x4 \(rounding\), accuracy \d+\.\d% \+- /);
  assert.match(vs.stdout, /pair by pair \(16 pairs\): only the first model right on \d+, only the second on \d+; difference -?\d+\.\d points, exact McNemar p (<0\.001|[\d.]+)/);
  const vsMissing = await run('eval', '--model', model, '--versus', path.join(tmp, 'no-such-model.safetensors'), '--lfw', root, '--cache', cache);
  assert.is(vsMissing.code, 1);
  assert.match(vsMissing.stderr, /E_IO/);

  const demo = await run('demo', '--lfw', root, '--steps', '2', '--cache', cache, '--out', path.join(tmp, 'lfw-demo'));
  assert.is(demo.code, 0, demo.stderr);
  assert.match(demo.stdout, /LFW View 1: trained on the 4 people of peopleDevTrain/);
  assert.match(demo.stdout, /pairs \(same \/ different\) \| 8 \/ 8/);

  const out = path.join(tmp, 'repro');
  const r = await run('reproduce', '--lfw', root, '--rows', '8x4-rounding,8x4-gender,float32,pca32', '--epochs', '1', '--cache', cache, '--out', out);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /\| 8x4, rounding \| Figure 4 \| \d+\.\d \+- \d+\.\d \| 91\.4 \|/);
  assert.match(r.stdout, /PCA to 32 dims/);
  assert.match(r.stdout, /^\| 8x4, rounding \|[^\n]*\|  \|$/m, '8x4 rounding has no row-specific training settings');
  // Distinct test codes, then the dimensions in use out of n, for the code rows only.
  assert.match(r.stdout, /\| distinct test codes \| dimensions in use \|/);
  assert.match(r.stdout, /^\| 8x4, rounding \|[^\n]*\| \d+ \| [0-8]\/8 \|/m);
  assert.match(r.stdout, /^\| PCA to 32 dims[^\n]*\|  \|  \|/m);
  // Each code row against the float row: the difference, and the McNemar p-value on the same pairs.
  assert.match(r.stdout, /\| vs float \| vs 32x1 rounding \|/);
  assert.match(r.stdout, /^\| 8x4, rounding \|[^\n]*\| -?\d+\.\d \(p (<0\.001|[\d.]+)\) \|  \|/m);
  assert.match(r.stdout, /exact McNemar test/);
  const reproJson = JSON.parse(fs.readFileSync(path.join(out, 'reproduce-view1.json'), 'utf8'));
  const [row8x4, , floatRow, pcaRow] = reproJson.rows;
  assert.is(row8x4.paired.length, 1);
  assert.is(row8x4.paired[0].against, 'float32');
  // 8 same and 8 different pairs in 8 folds of 2: the pair accuracy is the mean over folds.
  assert.ok(Math.abs(row8x4.paired[0].comparison.accuracyA - row8x4.mean) < 1e-12);
  assert.ok(Math.abs(row8x4.paired[0].comparison.accuracyB - floatRow.mean) < 1e-12);
  assert.equal(floatRow.paired, []);
  assert.equal(pcaRow.paired, []);
  // Mirror averaging is on by default in reproduce, said in the report and saved in the models.
  assert.match(r.stdout, /each face encoded as the mean of the network outputs for it and its mirror image/);
  assert.is(loadModelSync(path.join(out, 'models', '8x4-rounding-view1.safetensors')).encoding.mirrorAverage, true);
  for (const f of ['reproduce-view1.md', 'reproduce-view1.json', 'figure4-view1.svg', 'search-8x4.md', 'search-8x4.svg', 'gender-view1.md'])
    assert.ok(fs.existsSync(path.join(out, f)), f);
  assert.match(r.stdout, /Gender from 8x4 face codes[^\n]*identity-only 8x4 model/);
  // The gender row: trained with the gender lists' labels, its own gender report.
  assert.match(r.stdout, /^\| 8x4, rounding, plus the gender term \| Section 3\.2 \|[^\n]*\| attribute term weight 1 \|$/m);
  assert.match(r.stdout, /Gender from 8x4 face codes[^\n]*trained with the gender term/);
  assert.ok(fs.existsSync(path.join(out, 'gender-view1-8x4-gender.md')));
  assert.is(loadModelSync(path.join(out, 'models', '8x4-gender-view1.safetensors')).training.attributeWeight, 1);
  assert.match(r.stdout, /recall against bins visited \(8x4\)/);
  // 4 test people x 4 images: 16 queries with 3 targets each; all found once every bin is visited.
  const search = JSON.parse(fs.readFileSync(path.join(out, 'search-8x4.json'), 'utf8'));
  assert.is(search.queries, 16);
  assert.ok(search.recall[0].recall <= search.recall[search.recall.length - 1].recall);

  const se = await run('search-eval', '--model', path.join(out, 'models', '8x4-rounding-view1.safetensors'), '--lfw', root, '--cache', cache, '--out', path.join(tmp, 'se'));
  assert.is(se.code, 0, se.stderr);
  assert.match(se.stdout, /\| 1 \| 2\.33e-10 \|/);
  assert.match(fs.readFileSync(path.join(out, 'figure4-view1.svg'), 'utf8'), /<svg[^>]*>[\s\S]*rounding[\s\S]*<\/svg>/);
  // Only rows outside Figure 4: the report is written without the chart.
  const pcaOnly = await run('reproduce', '--lfw', root, '--rows', 'pca32', '--cache', cache, '--out', path.join(tmp, 'repro-pca'));
  assert.is(pcaOnly.code, 0, pcaOnly.stderr);
  assert.ok(fs.existsSync(path.join(tmp, 'repro-pca', 'reproduce-view1.md')));
  assert.not.ok(fs.existsSync(path.join(tmp, 'repro-pca', 'figure4-view1.svg')));
  // --seeds 2: two models per trained row (PCA has one), their mean per fold and each one.
  const seeded = await run('reproduce', '--lfw', root, '--rows', '32x1-std,pca32', '--epochs', '1', '--seeds', '2', '--seed', '5', '--cache', cache, '--out', path.join(tmp, 'repro-seeds'));
  assert.is(seeded.code, 0, seeded.stderr);
  assert.match(seeded.stdout, /\| accuracy % \(mean \+- std\) \| per seed % \(std over seeds\) \|/);
  assert.match(seeded.stdout, /^\| 32x1 binary[^|]*\| [^|]+ \| \d+\.\d \+- \d+\.\d \| \d+\.\d, \d+\.\d \(\d+\.\d\) \|/m);
  assert.match(seeded.stdout, /^\| PCA to 32 dims[^|]*\| [^|]+ \| \d+\.\d \+- \d+\.\d \| \d+\.\d \|/m);
  assert.match(seeded.stdout, /Each trained row has 2 models \(seeds 5, 6\)/);
  assert.match(seeded.stderr + seeded.stdout, /32x1-std seed 6: accuracy/);
  for (const f of ['32x1-std-view1.safetensors', '32x1-std-view1-seed6.safetensors']) assert.ok(fs.existsSync(path.join(tmp, 'repro-seeds', 'models', f)), f);
  // reproduce's own default for alpha / beta (train()'s is 1e-2), in the header and the models.
  assert.match(seeded.stdout, /^Trained on LFW only [^\n]*, alpha \/ beta learning rate 0\.001[,;]/m);
  assert.is(loadModelSync(path.join(tmp, 'repro-seeds', 'models', '32x1-std-view1.safetensors')).training.alphaBetaLearningRate, 0.001);
  const seededJson = JSON.parse(fs.readFileSync(path.join(tmp, 'repro-seeds', 'reproduce-view1.json'), 'utf8'));
  assert.equal(seededJson.rows[0].seeds, [5, 6]);
  assert.is(seededJson.rows[0].seedMeans.length, 2);
  assert.is(seededJson.rows[0].trainSeconds.length, 2);
  // The row's fold accuracies are the mean of its two models' (their overall mean is the mean of the two).
  const meanOfSeeds = (seededJson.rows[0].seedMeans[0] + seededJson.rows[0].seedMeans[1]) / 2;
  assert.ok(Math.abs(seededJson.rows[0].mean - meanOfSeeds) < 1e-12);
  assert.equal(seededJson.rows[1].seedMeans.length, 1, 'PCA: one run');
  assert.equal(seededJson.rows[0].paired, [], 'std without the rounding and float rows: nothing to compare with');
  // --gender-weight: the gender row's weight, in its training note and its model.
  // --alpha-beta-learning-rate: in the report's header and in every model.
  const gw = await run('reproduce', '--lfw', root, '--rows', '8x4-gender', '--epochs', '1', '--gender-weight', '0.3', '--alpha-beta-learning-rate', '0.001', '--cache', cache, '--out', path.join(tmp, 'repro-gw'));
  assert.is(gw.code, 0, gw.stderr);
  assert.match(gw.stdout, /^\| 8x4, rounding, plus the gender term \|[^\n]*\| attribute term weight 0\.3 \|$/m);
  assert.match(gw.stdout, /^Trained on LFW only [^\n]*, learning rate 0\.0002, alpha \/ beta learning rate 0\.001[,;]/m);
  const gwModel = loadModelSync(path.join(tmp, 'repro-gw', 'models', '8x4-gender-view1.safetensors'));
  assert.is(gwModel.training.attributeWeight, 0.3);
  assert.is(gwModel.training.alphaBetaLearningRate, 0.001);
  const gwBad = await run('reproduce', '--lfw', root, '--gender-weight', '-1', '--cache', cache);
  assert.is(gwBad.code, 1);
  assert.match(gwBad.stderr, /E_ARG[\s\S]*options\.genderWeight/);
  const noSeeds = await run('reproduce', '--lfw', root, '--seeds', '0', '--cache', cache);
  assert.is(noSeeds.code, 1);
  assert.match(noSeeds.stderr, /E_ARG[\s\S]*options\.seeds/);
  // Without gender lists the gender row cannot train.
  const noGender = path.join(tmp, 'lfw-no-gender');
  fs.cpSync(root, noGender, { recursive: true });
  fs.rmSync(path.join(noGender, 'gender'), { recursive: true });
  const ng = await run('reproduce', '--lfw', noGender, '--rows', '8x4-gender', '--cache', cache);
  assert.is(ng.code, 1);
  assert.match(ng.stderr, /E_IO[\s\S]*gender lists[\s\S]*8x4-gender/);
  const bad = await run('reproduce', '--lfw', root, '--rows', 'nope');
  assert.is(bad.code, 1);
  assert.match(bad.stderr, /E_ARG/);
});

test.run();
