// The commands of the `dcl` tool (lib/cli.ts runs them). Each one validates nothing itself beyond
// option types: the library's functions check their arguments and throw DclErrors.
import fs from 'node:fs';
import path from 'node:path';
import { commandHelp, pct, UsageError, writeFileEnsuringDir } from './cli.js';
import type { CommandContext, CommandSpec } from './cli.js';
import { codeDistances } from './codes.js';
import { codeReport, runDemo } from './demo.js';
import type { DemoReport } from './demo.js';
import { foldedAccuracy, foldedCorrect, pairedComparison, pValueText } from './eval.js';
import { DEFAULT_PREPROCESSING, LFW_PREPROCESSING, loadDataset, loadImages, resolvePreprocessing, scanFolderDataset } from './images.js';
import type { ImagePreprocessing, LoadedDataset } from './images.js';
import { findLfw, lfwView1Split, lfwView2Split, loadedPairs } from './lfw.js';
import type { LfwImageSet, LfwPairSet, LfwSplit } from './lfw.js';
import { loadModel } from './model.js';
import { DEFAULT_REPRODUCE_ALPHA_BETA_LEARNING_RATE, DEFAULT_REPRODUCE_EPOCHS, REPRODUCE_ROWS, reproduce } from './reproduce.js';
import { DEFAULT_ALPHA_BETA_LEARNING_RATE, encode, train } from './train.js';
import type { TrainMethod } from './model.js';
import type { TrainProgress } from './train.js';

const str = (ctx: CommandContext, name: string, fallback: string): string => (ctx.options[name] as string | undefined) ?? fallback;
const int = (ctx: CommandContext, name: string, fallback: number): number => (ctx.options[name] as number | undefined) ?? fallback;

/** One training progress line: step, loss, the batch's distinct codes (1: collapsing), speed, and any restarts. */
function trainStatus(p: TrainProgress): string {
  const restarted = p.restarts > 0 ? `  (started again after ${p.restarts === 1 ? 'a collapse' : `${p.restarts} collapses`})` : '';
  return `step ${p.step}/${p.totalSteps} (epoch ${p.epoch})  loss ${p.loss.toFixed(4)}  codes ${p.distinctCodes}  ${p.imagesPerSecond.toFixed(0)} img/s${restarted}`;
}

function trainProgress(ctx: CommandContext, label: string) {
  return (p: TrainProgress) => ctx.out.progress(`${label} ${trainStatus(p)}`);
}

function noPositional(ctx: CommandContext, c: CommandSpec): void {
  if (ctx.positional.length) throw new UsageError(`unexpected argument '${ctx.positional[0]}'\n${commandHelp(c)}`);
}

const cacheOptions = {
  cache: { type: 'string', help: 'folder for the decoded-image cache (default: $DCL_CACHE_DIR or ~/.cache/dcl-native)', value: 'DIR' },
  'no-cache': { type: 'boolean', help: 'decode every image again, write no cache' },
} as const;

function cacheOf(ctx: CommandContext): boolean | string {
  if (ctx.options['no-cache']) return false;
  return (ctx.options.cache as string | undefined) ?? true;
}

// ---------------------------------------------------------------------------------------------
// dcl demo

function demoMarkdown(r: DemoReport): string {
  const t = r.test;
  return [
    '# dcl demo report',
    '',
    r.data.source === 'lfw'
      ? `LFW View 1: trained on the ${r.data.trainIdentities} people of peopleDevTrain (64x64 grey crops), tested on the pairsDevTest pairs of ${r.data.testIdentities} other people.`
      : `Generated faces: ${r.data.identities} people x ${r.data.imagesPerIdentity} images (64x64 grey); trained on ${r.data.trainIdentities} people, tested on the other ${r.data.testIdentities}, never seen in training.`,
    `Code: ${r.layout} (${r.method}); ${r.training.steps} steps in ${r.training.seconds.toFixed(1)} s (${r.training.imagesPerSecond.toFixed(0)} img/s), final batch loss ${r.training.finalLoss.toFixed(4)}.`,
    '',
    '| measure | value |',
    '| --- | --- |',
    `| verification accuracy, 10 folds (mean +- std) | ${pct(t.accuracy.mean)} +- ${pct(t.accuracy.std)} |`,
    `| area under the ROC curve | ${t.auc.toFixed(3)} |`,
    `| pairs (same / different) | ${t.pairs.same} / ${t.pairs.different} |`,
    `| test faces / occupied bins | ${t.bins.images} / ${t.bins.occupied} |`,
    `| faces in the fullest bin | ${t.bins.largest} |`,
    `| faces sharing a bin with another person | ${pct(t.bins.sharedWithOthers)} |`,
    '',
    'Chance is 50% (as many same-person pairs as different-person pairs).',
    '',
  ].join('\n');
}

const demo: CommandSpec = {
  name: 'demo',
  summary: 'train on generated faces for about a minute, then verify people it never saw',
  options: {
    layout: { type: 'string', help: 'code layout nxQ', default: '8x4', value: 'NxQ' },
    method: { type: 'string', help: "'rounding', 'dp' (32x1 only), 'std' or 'float'", default: 'rounding', value: 'NAME' },
    steps: { type: 'int', help: 'training steps', default: 260, value: 'N' },
    identities: { type: 'int', help: 'generated people (a sixth are held out for testing)', default: 240, value: 'N' },
    seed: { type: 'int', help: 'seed of the faces, the weights and the batches', default: 1, value: 'N' },
    out: { type: 'string', help: 'folder for the report (report.md, report.json) and the model', default: 'dcl-demo', value: 'DIR' },
    lfw: { type: 'string', help: 'use LFW instead (View 1: peopleDevTrain for training, pairsDevTest for the test)', value: 'DIR' },
    ...cacheOptions,
  },
  details:
    'Nothing is downloaded: the faces are generated in code (per-person face geometry and shading, per-image\n' +
    'pose, lighting, expression and noise).',
  async run(ctx) {
    noPositional(ctx, this);
    const outDir = str(ctx, 'out', 'dcl-demo');
    const lfw = ctx.options.lfw as string | undefined;
    ctx.out.note(
      lfw
        ? 'dcl demo: LFW View 1, a small DCL-S model trained for about a minute on 2 cores...'
        : 'dcl demo: generating faces and training a small DCL-S model (about a minute on 2 cores)...',
    );
    const report = await runDemo({
      ...(lfw ? { lfw, cache: cacheOf(ctx), onLoad: (done: number, total: number) => ctx.out.progress(`decoding LFW images: ${done}/${total}`) } : {}),
      layout: str(ctx, 'layout', '8x4'),
      method: str(ctx, 'method', 'rounding') as TrainMethod,
      steps: int(ctx, 'steps', 260),
      identities: int(ctx, 'identities', 240),
      seed: int(ctx, 'seed', 1),
      onProgress: trainProgress(ctx, 'training'),
      signal: ctx.signal,
    });
    ctx.out.endProgress();
    const md = demoMarkdown(report);
    ctx.out.print(md);
    writeFileEnsuringDir(path.join(outDir, 'report.md'), md);
    const { model, ...json } = report;
    writeFileEnsuringDir(path.join(outDir, 'report.json'), JSON.stringify(json, null, 2) + '\n');
    await model.save(path.join(outDir, 'model.safetensors'));
    ctx.out.note(`report and model written to ${outDir}/ (report.md, report.json, model.safetensors)`);
  },
};

// ---------------------------------------------------------------------------------------------
// Shared pieces: data sets from the command line

function loadProgress(ctx: CommandContext, what: string) {
  return (p: { done: number; total: number; skipped: number }) =>
    ctx.out.progress(`${what}: ${p.done}/${p.total} images${p.skipped ? `, ${p.skipped} skipped` : ''}`);
}

async function loadSet(ctx: CommandContext, set: LfwImageSet, pre: ImagePreprocessing, what: string, size: 'network' | 'stored'): Promise<LoadedDataset> {
  const data = await loadDataset({ files: set.paths, labels: set.labels, names: set.people }, pre, {
    size,
    cache: cacheOf(ctx),
    signal: ctx.signal,
    onProgress: loadProgress(ctx, what),
    onWarning: (m) => ctx.out.note(`warning: ${m}`),
  });
  ctx.out.endProgress();
  return data;
}

/** --protocol view1 | fold:K (K in 0..9) -> an LFW split. */
function lfwSplit(ctx: CommandContext, protocol: string): LfwSplit {
  const where = findLfw(str(ctx, 'lfw', ''), ctx.options.images ? { images: ctx.options.images as string } : undefined);
  if (protocol === 'view1') return lfwView1Split(where);
  const m = /^fold:(\d+)$/.exec(protocol);
  if (!m) throw new UsageError(`--protocol must be view1 or fold:K (K from 0 to 9), not '${protocol}'`);
  return lfwView2Split(where, Number(m[1]));
}

// ---------------------------------------------------------------------------------------------
// Options that dcl train and dcl reproduce share

const alphaBetaOption = (defaultRate: number) =>
  ({
    'alpha-beta-learning-rate': { type: 'number', help: 'Adam learning rate of alpha and beta (README, "Results on LFW": 1e-3 for long runs)', default: defaultRate, value: 'LR' },
  }) as const;

/** TrainOptions.alphaBetaLearningRate when --alpha-beta-learning-rate is given (the command's default otherwise). */
function alphaBetaLearningRate(ctx: CommandContext): { alphaBetaLearningRate?: number } {
  const rate = ctx.options['alpha-beta-learning-rate'];
  return rate === undefined ? {} : { alphaBetaLearningRate: rate as number };
}

// ---------------------------------------------------------------------------------------------
// dcl train

const trainCommand: CommandSpec = {
  name: 'train',
  summary: 'train a code model on a folder of faces (one sub-folder per person), a list file, or LFW',
  options: {
    data: { type: 'string', help: 'a folder with one sub-folder per person, or a list file of path<TAB>label lines', value: 'PATH' },
    lfw: { type: 'string', help: 'train on LFW instead (the training people of --protocol)', value: 'DIR' },
    images: { type: 'string', help: "LFW's image folder under DIR, when not found automatically", value: 'NAME' },
    protocol: { type: 'string', help: "with --lfw: 'view1' (peopleDevTrain) or 'fold:K' (the people of the nine other sets)", default: 'view1', value: 'P' },
    layout: { type: 'string', help: 'code layout nxQ', default: '32x1', value: 'NxQ' },
    method: { type: 'string', help: "'rounding', 'dp' (Q = 1), 'std' or 'float'", default: 'rounding', value: 'NAME' },
    epochs: { type: 'int', help: 'passes over the people', default: 10, value: 'N' },
    steps: { type: 'int', help: 'a fixed number of steps instead of epochs', value: 'N' },
    'learning-rate': { type: 'number', help: 'AdamW learning rate', default: 2e-4, value: 'LR' },
    ...alphaBetaOption(DEFAULT_ALPHA_BETA_LEARNING_RATE),
    seed: { type: 'int', help: 'seed of the weights, batches and augmentation', default: 1, value: 'N' },
    size: { type: 'int', help: 'network input side in pixels (--data; LFW uses its crop at 64)', default: 64, value: 'N' },
    color: { type: 'string', help: "'gray' or 'rgb' (--data)", default: 'gray', value: 'C' },
    augment: { type: 'boolean', help: 'random flips, shifts and scales (store images with a margin)', default: 'on for --lfw' },
    mirror: { type: 'boolean', help: 'the model encodes a face as the average of it and its mirror image (twice the encoding work)', default: 'off' },
    gender: { type: 'boolean', help: "with --lfw: also learn gender from LFW's gender lists (the attribute term), so the code carries it for dcl classify", default: 'off' },
    'gender-weight': { type: 'number', help: 'with --gender: the weight of the gender term (0.3 may help verification, 1 gives the best gender; README)', default: 1, value: 'W' },
    out: { type: 'string', help: 'model file to write', default: 'model.safetensors', value: 'FILE' },
    ...cacheOptions,
  },
  async run(ctx) {
    noPositional(ctx, this);
    const hasData = typeof ctx.options.data === 'string';
    const hasLfw = typeof ctx.options.lfw === 'string';
    if (hasData === hasLfw) throw new UsageError('give exactly one of --data PATH and --lfw DIR');
    let pre: ImagePreprocessing;
    let data: LoadedDataset;
    let attributes: Int32Array | undefined;
    const augment = (ctx.options.augment as boolean | undefined) ?? hasLfw;
    if (ctx.options.gender === true && !hasLfw) throw new UsageError('--gender needs --lfw (the labels come from its gender lists)');
    if (ctx.options['gender-weight'] !== undefined && ctx.options.gender !== true) throw new UsageError('--gender-weight needs --gender');
    if (hasLfw) {
      pre = resolvePreprocessing(augment ? LFW_PREPROCESSING : { ...LFW_PREPROCESSING, storedSize: null });
      const split = lfwSplit(ctx, str(ctx, 'protocol', 'view1'));
      data = await loadSet(ctx, split.train, pre, 'decoding LFW training images', 'stored');
      if (ctx.options.gender === true) {
        const { lfwGenderAttributes } = await import('./gender.js');
        attributes = lfwGenderAttributes(findLfw(str(ctx, 'lfw', ''), ctx.options.images ? { images: ctx.options.images as string } : undefined), data.files);
        ctx.out.note(`gender term: ${attributes.filter((a) => a >= 0).length} of ${attributes.length} images labelled`);
      }
    } else {
      const side = int(ctx, 'size', 64);
      const color = str(ctx, 'color', 'gray') as 'gray' | 'rgb';
      const margin = Math.round(side / 16) * 2;
      pre = resolvePreprocessing({ ...DEFAULT_PREPROCESSING, inputShape: undefined, size: side, color, storedSize: augment ? side + margin : null });
      data = await loadDataset(str(ctx, 'data', ''), pre, {
        size: 'stored',
        cache: cacheOf(ctx),
        signal: ctx.signal,
        onProgress: loadProgress(ctx, 'decoding images'),
        onWarning: (m) => ctx.out.note(`warning: ${m}`),
      });
      ctx.out.endProgress();
    }
    ctx.out.note(`${data.count} images of ${new Set(data.labels).size} people${data.skipped.length ? ` (${data.skipped.length} skipped)` : ''}${data.fromCache ? ', from the cache' : ''}`);
    const started = performance.now();
    const model = await train({
      data: { images: data.images, labels: data.labels, shape: data.shape, ...(attributes ? { attributes } : {}) },
      ...(attributes && ctx.options['gender-weight'] !== undefined ? { attributeWeight: ctx.options['gender-weight'] as number } : {}),
      preprocessing: pre,
      augment,
      mirrorAverage: (ctx.options.mirror as boolean | undefined) ?? false,
      layout: str(ctx, 'layout', '32x1'),
      method: str(ctx, 'method', 'rounding') as TrainMethod,
      epochs: int(ctx, 'epochs', 10),
      ...(ctx.options.steps !== undefined ? { steps: ctx.options.steps as number } : {}),
      learningRate: (ctx.options['learning-rate'] as number | undefined) ?? 2e-4,
      ...alphaBetaLearningRate(ctx),
      seed: int(ctx, 'seed', 1),
      singlesPerBatch: 16,
      onProgress: trainProgress(ctx, 'training'),
      signal: ctx.signal,
    });
    ctx.out.endProgress();
    const file = str(ctx, 'out', 'model.safetensors');
    await model.save(file);
    ctx.out.print(`trained ${model.layout.name} (${model.method}) in ${((performance.now() - started) / 1e3).toFixed(0)} s; model written to ${file}`);
  },
};

// ---------------------------------------------------------------------------------------------
// dcl encode

const IMAGE_FILE = /\.(jpe?g|png|webp|tiff?|pgm)$/i;

function listImages(paths: string[]): string[] {
  const files: string[] = [];
  for (const p of paths) {
    let stat: fs.Stats | null = null;
    try {
      stat = fs.statSync(p);
    } catch {
      stat = null; // loadImages reports the missing file by name
    }
    if (stat?.isDirectory()) {
      const walk = (dir: string) => {
        for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
          const full = path.join(dir, e.name);
          if (e.isDirectory()) walk(full);
          else if (IMAGE_FILE.test(e.name)) files.push(full);
        }
      };
      walk(p);
    } else files.push(p);
  }
  return files;
}

const encodeCommand: CommandSpec = {
  name: 'encode',
  summary: 'print the 32-bit code of each image (files, or folders searched for images)',
  args: 'IMAGE|FOLDER...',
  options: {
    model: { type: 'string', help: 'model file (from dcl train)', value: 'FILE' },
    format: { type: 'string', help: "'tsv' (path, code as signed int32, as 8 hex digits) or 'json'", default: 'tsv', value: 'F' },
    out: { type: 'string', help: 'write to FILE instead of standard output', value: 'FILE' },
  },
  async run(ctx) {
    if (typeof ctx.options.model !== 'string') throw new UsageError('--model FILE is required');
    if (ctx.positional.length === 0) throw new UsageError('give at least one image or folder');
    const format = str(ctx, 'format', 'tsv');
    if (format !== 'tsv' && format !== 'json') throw new UsageError(`--format must be tsv or json, not '${format}'`);
    const model = await loadModel(ctx.options.model);
    const files = listImages(ctx.positional);
    if (files.length === 0) throw new UsageError('no images found (looked for .jpg, .jpeg, .png, .webp, .tif, .tiff, .pgm)');
    const decoded = await loadImages(files, resolvePreprocessing(model.preprocessing as ImagePreprocessing), {
      signal: ctx.signal,
      onProgress: loadProgress(ctx, 'decoding'),
    });
    ctx.out.endProgress();
    const codes = await encode(model, { images: decoded.images, shape: decoded.shape }, { signal: ctx.signal });
    const hex = (c: number) => (c >>> 0).toString(16).padStart(8, '0');
    const text =
      format === 'json'
        ? JSON.stringify({ layout: model.layout.name, codes: files.map((f, i) => ({ file: f, code: codes[i], hex: hex(codes[i]) })) }, null, 2)
        : files.map((f, i) => `${f}\t${codes[i]}\t${hex(codes[i])}`).join('\n');
    if (typeof ctx.options.out === 'string') {
      writeFileEnsuringDir(ctx.options.out, text + '\n');
      ctx.out.note(`${files.length} codes written to ${ctx.options.out}`);
    } else ctx.out.print(text);
  },
};

// ---------------------------------------------------------------------------------------------
// dcl eval

const evalCommand: CommandSpec = {
  name: 'eval',
  summary: 'face verification accuracy of a model on LFW pairs (people it must not have trained on)',
  options: {
    model: { type: 'string', help: 'model file', value: 'FILE' },
    versus: { type: 'string', help: 'a second model judged on the same pairs and compared pair by pair (exact McNemar test)', value: 'FILE' },
    lfw: { type: 'string', help: 'LFW root', value: 'DIR' },
    images: { type: 'string', help: "LFW's image folder under DIR, when not found automatically", value: 'NAME' },
    protocol: { type: 'string', help: "'view1' (pairsDevTest) or 'fold:K' (the pairs of View 2 fold K)", default: 'view1', value: 'P' },
    ...cacheOptions,
  },
  details:
    'The pairs are dealt into ten folds (same and different pairs round-robin); each fold is judged with the\n' +
    'distance threshold that is best on the other nine. The model should not have seen these people:\n' +
    "train with the same --protocol (dcl train --lfw DIR --protocol P) to keep them apart.\n" +
    'With --versus, both models are judged on the pairs whose images loaded for both, and the pairs only one\n' +
    'of them gets right decide the exact McNemar test: a p above 0.05 means these pairs cannot tell them apart.',
  async run(ctx) {
    noPositional(ctx, this);
    if (typeof ctx.options.model !== 'string' || typeof ctx.options.lfw !== 'string') throw new UsageError('--model FILE and --lfw DIR are required');
    const split = lfwSplit(ctx, str(ctx, 'protocol', 'view1'));
    const first = await verifyPairs(ctx, ctx.options.model, split.test);
    const lines = [
      `model ${ctx.options.model}: ${first.model.layout.name} (${first.model.method})`,
      `pairs: ${first.sameCount} same, ${first.pairs.length - first.sameCount} different${first.missing ? ` (${first.missing} left out: an image did not load)` : ''}`,
      `accuracy ${pct(first.result.mean)} +- ${pct(first.result.std)} (${first.result.folds.length} folds; standard error ${pct(first.result.standardError)})`,
      `test images ${first.bins.images}, occupied bins ${first.bins.occupied}, fullest bin ${first.bins.largest}`,
    ];
    if (typeof ctx.options.versus === 'string') {
      const second = await verifyPairs(ctx, ctx.options.versus, split.test);
      // Only the pairs both models could judge; their fold verdicts stay as each model's run dealt them.
      const rightOf = new Map(second.pairs.map((p, k) => [p, second.correct[k]]));
      const both = first.pairs.flatMap((p, k) => (rightOf.has(p) ? [[first.correct[k], rightOf.get(p)!]] : []));
      const c = pairedComparison(both.map((x) => x[0]), both.map((x) => x[1]));
      lines.push(
        `versus ${ctx.options.versus}: ${second.model.layout.name} (${second.model.method}), accuracy ${pct(second.result.mean)} +- ${pct(second.result.std)}`,
        `pair by pair (${c.count} pairs): only the first model right on ${c.onlyA}, only the second on ${c.onlyB}; ` +
          `difference ${(100 * c.difference).toFixed(1)} points, exact McNemar p ${pValueText(c.pValue)}`,
      );
    }
    ctx.out.print(lines.join('\n'));
  },
};

/** One model's verdicts on the test pairs whose images loaded: the pair numbers, right / wrong per pair, the folded accuracy. */
async function verifyPairs(ctx: CommandContext, file: string, test: LfwPairSet) {
  const model = await loadModel(file);
  const pre = resolvePreprocessing(model.preprocessing as ImagePreprocessing);
  const data = await loadSet(ctx, test, { ...pre, storedSize: null }, 'decoding test images', 'network');
  const codes = await encode(model, { images: data.images, shape: data.shape }, { signal: ctx.signal });
  const { a, b, same, pairs } = loadedPairs(test, data.files);
  const distances = codeDistances(Int32Array.from(a, (i) => codes[i]), Int32Array.from(b, (i) => codes[i]), model.layout);
  return {
    model,
    pairs: Array.from(pairs),
    missing: test.a.length - pairs.length,
    sameCount: same.reduce((x, v) => x + v, 0),
    result: foldedAccuracy(distances, same, 10),
    correct: foldedCorrect(distances, same, 10),
    bins: codeReport(codes, data.labels, model.layout.name).bins,
  };
}

// ---------------------------------------------------------------------------------------------
// dcl reproduce

const reproduceCommand: CommandSpec = {
  name: 'reproduce',
  summary: "train and judge the paper's Table 1 and Figure 4 rows on LFW; writes Markdown, JSON and an SVG chart",
  options: {
    lfw: { type: 'string', help: 'LFW root (pairs.txt, people.txt, an image folder)', value: 'DIR' },
    images: { type: 'string', help: 'the image folder under DIR, when not found automatically', value: 'NAME' },
    protocol: { type: 'string', help: "'view1' (quick) or '10fold' (View 2, unrestricted)", default: 'view1', value: 'P' },
    folds: { type: 'int', help: "with '10fold': how many folds to run", default: 10, value: 'N' },
    epochs: { type: 'int', help: 'training passes over the people, per model (40 for a run three times shorter)', default: DEFAULT_REPRODUCE_EPOCHS, value: 'N' },
    rows: { type: 'string', help: `comma-separated rows (${REPRODUCE_ROWS.map((r) => r.id).join(', ')})`, default: 'all', value: 'LIST' },
    'learning-rate': { type: 'number', help: 'AdamW learning rate', default: 2e-4, value: 'LR' },
    'weight-decay': { type: 'number', help: 'AdamW weight decay', default: 1e-4, value: 'WD' },
    ...alphaBetaOption(DEFAULT_REPRODUCE_ALPHA_BETA_LEARNING_RATE),
    'identities-per-batch': { type: 'int', help: 'P people per batch', default: 32, value: 'P' },
    'images-per-identity': { type: 'int', help: 'K images of each', default: 4, value: 'K' },
    singles: { type: 'int', help: 'one-image people added to each batch as negatives', default: 16, value: 'N' },
    mirror: { type: 'boolean', help: 'encode each face as the average of it and its mirror image', default: 'on' },
    seed: { type: 'int', help: 'seed of the first model of each row', default: 1, value: 'N' },
    seeds: { type: 'int', help: 'models per trained row (seeds N, N+1, ...): the table gives their mean and each one', default: 1, value: 'S' },
    'gender-weight': { type: 'number', help: 'the weight of the gender term in the row 8x4-gender', default: 1, value: 'W' },
    out: { type: 'string', help: 'folder for the report and the models', default: 'dcl-reproduce', value: 'DIR' },
    ...cacheOptions,
  },
  async run(ctx) {
    noPositional(ctx, this);
    if (typeof ctx.options.lfw !== 'string') throw new UsageError('--lfw DIR is required');
    const protocol = str(ctx, 'protocol', 'view1');
    if (protocol !== 'view1' && protocol !== '10fold') throw new UsageError(`--protocol must be view1 or 10fold, not '${protocol}'`);
    const rowsOption = str(ctx, 'rows', 'all');
    const seeds = int(ctx, 'seeds', 1);
    const report = await reproduce({
      lfw: ctx.options.lfw,
      ...(ctx.options.images ? { images: ctx.options.images as string } : {}),
      protocol,
      folds: int(ctx, 'folds', 10),
      epochs: int(ctx, 'epochs', DEFAULT_REPRODUCE_EPOCHS),
      ...(rowsOption === 'all' ? {} : { rows: rowsOption.split(',').map((r) => r.trim()).filter(Boolean) }),
      seed: int(ctx, 'seed', 1),
      seeds,
      ...(ctx.options['gender-weight'] !== undefined ? { genderWeight: ctx.options['gender-weight'] as number } : {}),
      train: {
        learningRate: (ctx.options['learning-rate'] as number | undefined) ?? 2e-4,
        weightDecay: (ctx.options['weight-decay'] as number | undefined) ?? 1e-4,
        ...alphaBetaLearningRate(ctx),
        identitiesPerBatch: int(ctx, 'identities-per-batch', 32),
        imagesPerIdentity: int(ctx, 'images-per-identity', 4),
        singlesPerBatch: int(ctx, 'singles', 16),
        mirrorAverage: (ctx.options.mirror as boolean | undefined) ?? true,
      },
      out: str(ctx, 'out', 'dcl-reproduce'),
      cache: cacheOf(ctx),
      signal: ctx.signal,
      onEvent: (e) => {
        if (e.kind === 'load') ctx.out.progress(`${e.what}: ${e.done}/${e.total}`);
        else if (e.kind === 'train')
          ctx.out.progress(`${e.row}${e.fold === null ? '' : ` fold ${e.fold}`}${seeds > 1 ? ` seed ${e.seed}` : ''}: ${trainStatus(e.progress)}`);
        else if (e.kind === 'row') ctx.out.note(`${e.row}${e.fold === null ? '' : ` fold ${e.fold}`}${seeds > 1 ? ` seed ${e.seed}` : ''}: accuracy ${pct(e.accuracy)} (${e.seconds.toFixed(0)} s)`);
        else ctx.out.note(e.message);
      },
    });
    ctx.out.print(report.markdown);
    ctx.out.note(`written: ${report.files.join(', ')}`);
  },
};

// ---------------------------------------------------------------------------------------------
// dcl index build | search

/** The sidecar of an index file: the image files whose positions are the index's ids. */
function indexSidecar(file: string): string {
  return `${file}.files.json`;
}

async function encodeFiles(ctx: CommandContext, modelFile: string, files: string[]) {
  const model = await loadModel(modelFile);
  const decoded = await loadImages(files, resolvePreprocessing(model.preprocessing as ImagePreprocessing), {
    signal: ctx.signal,
    onProgress: loadProgress(ctx, 'decoding'),
  });
  ctx.out.endProgress();
  const codes = await encode(model, { images: decoded.images, shape: decoded.shape }, { signal: ctx.signal });
  return { model, codes };
}

const indexCommand: CommandSpec = {
  name: 'index',
  summary: 'build a bin index of face images (index build), or find the nearest faces to images (index search)',
  args: 'build IMAGE|FOLDER...  |  search IMAGE...',
  options: {
    model: { type: 'string', help: 'model file (from dcl train)', value: 'FILE' },
    out: { type: 'string', help: 'build: the index file to write (and FILE.files.json, the image list)', value: 'FILE' },
    index: { type: 'string', help: 'search: the index file (from dcl index build)', value: 'FILE' },
    k: { type: 'int', help: 'search: faces to show per image', default: 10, value: 'N' },
    'max-bins': { type: 'int', help: 'search: visit at most N occupied bins (then show every face in them, up to --k)', value: 'N' },
  },
  details:
    'build encodes every image with the model and stores its code with id = its position in the list\n' +
    '(folders are searched for images, sorted by name); the list goes next to the index as FILE.files.json.\n' +
    'search prints, for each image, the nearest indexed faces: rank, distance, file (bins in ascending\n' +
    'distance from the image\'s code, ties in ascending code, faces of a bin in the order they were indexed).',
  async run(ctx) {
    const [action, ...inputs] = ctx.positional;
    if (action !== 'build' && action !== 'search') throw new UsageError(`give 'build' or 'search' after 'index'${action ? `, not '${action}'` : ''}`);
    if (typeof ctx.options.model !== 'string') throw new UsageError('--model FILE is required');
    if (inputs.length === 0) throw new UsageError(action === 'build' ? 'give at least one image or folder to index' : 'give at least one image to search for');
    const { BinIndex } = await import('./bin-index.js');
    if (action === 'build') {
      if (typeof ctx.options.out !== 'string') throw new UsageError('--out FILE is required');
      const files = listImages(inputs);
      if (files.length === 0) throw new UsageError('no images found (looked for .jpg, .jpeg, .png, .webp, .tif, .tiff, .pgm)');
      const { model, codes } = await encodeFiles(ctx, ctx.options.model, files);
      const index = new BinIndex({ layout: model.layout });
      index.add(codes, Array.from(codes, (_, i) => i));
      await index.save(ctx.options.out);
      writeFileEnsuringDir(indexSidecar(ctx.options.out), JSON.stringify({ layout: model.layout.name, files }, null, 2) + '\n');
      ctx.out.print(`indexed ${files.length} faces of layout ${model.layout.name} in ${index.bins} bins; written to ${ctx.options.out} and ${indexSidecar(ctx.options.out)}`);
      return;
    }
    if (typeof ctx.options.index !== 'string') throw new UsageError('--index FILE is required');
    const index = await BinIndex.load(ctx.options.index);
    let names: string[];
    try {
      names = (JSON.parse(fs.readFileSync(indexSidecar(ctx.options.index), 'utf8')) as { files: string[] }).files;
    } catch {
      names = [];
      ctx.out.note(`warning: ${indexSidecar(ctx.options.index)} could not be read; showing ids instead of file names`);
    }
    const files = listImages(inputs);
    const { model, codes } = await encodeFiles(ctx, ctx.options.model, files);
    if (model.layout.name !== index.layout.name)
      throw new UsageError(`the model's layout ${model.layout.name} is not the index's layout ${index.layout.name}`);
    const k = int(ctx, 'k', 10);
    const options = ctx.options['max-bins'] !== undefined ? { k, maxBins: ctx.options['max-bins'] as number } : { k };
    const lines: string[] = [];
    for (let i = 0; i < files.length; i++) {
      const r = index.search(codes[i], options);
      lines.push(`${files[i]}\tcode ${codes[i]}\t${r.ids.length} found (${r.stats.binsVisited} bins visited, ${r.stats.strategy})`);
      for (let j = 0; j < r.ids.length; j++) lines.push(`  ${j + 1}\t${r.distances[j]}\t${names[r.ids[j]] ?? `id ${r.ids[j]}`}`);
    }
    ctx.out.print(lines.join('\n'));
  },
};

// ---------------------------------------------------------------------------------------------
// dcl classify fit | predict

/** The look-up table's prediction options from the command line (undefined: the table's own). */
function lutOptions(ctx: CommandContext): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  if (ctx.options['min-samples'] !== undefined) o.minSamples = ctx.options['min-samples'];
  if (ctx.options.weighting !== undefined) o.weighting = ctx.options.weighting;
  if (ctx.options.tau !== undefined) o.tau = ctx.options.tau;
  if (ctx.options['max-distance'] !== undefined) o.maxDistance = ctx.options['max-distance'];
  return o;
}

const classifyCommand: CommandSpec = {
  name: 'classify',
  summary: 'attributes by look-up table over bins: count labelled faces per bin (classify fit), then predict (classify predict)',
  args: 'fit  |  predict IMAGE...',
  options: {
    model: { type: 'string', help: 'model file (from dcl train): the codes', value: 'FILE' },
    lut: { type: 'string', help: 'the table file: written by fit, read by predict', value: 'FILE' },
    list: { type: 'string', help: 'fit: a list file of path<TAB>class lines', value: 'FILE' },
    'lfw-gender': { type: 'string', help: "fit: LFW's gender lists instead, over the View 1 training people (peopleDevTrain)", value: 'DIR' },
    images: { type: 'string', help: "with --lfw-gender: LFW's image folder under DIR, when not found automatically", value: 'NAME' },
    'all-people': { type: 'boolean', help: 'with --lfw-gender: every person of people.txt, not only peopleDevTrain' },
    'min-samples': { type: 'int', help: 'widen to nearby bins until this many labelled faces are gathered', default: 1, value: 'N' },
    weighting: { type: 'string', help: "'none', 'inverse' (1 / (1 + d)) or 'exp' (exp(-d / tau))", default: 'none', value: 'W' },
    tau: { type: 'number', help: "length scale of 'exp' weighting", default: 1, value: 'T' },
    'max-distance': { type: 'int', help: 'visit no bin farther than this (then answer the prior)', value: 'D' },
    ...cacheOptions,
  },
  details:
    'fit encodes every labelled image with the model and counts, per occupied bin, the faces of each class; the\n' +
    'options --min-samples, --weighting, --tau and --max-distance given to fit are stored as the table\'s defaults,\n' +
    'given to predict they override them. predict prints, per image: file, class, its probability, and the faces\n' +
    'and bins gathered (bins in ascending distance from the image\'s code, ties in ascending code), or "prior" when\n' +
    'no bin lies within --max-distance (the answer is then the class frequencies of everything counted).',
  async run(ctx) {
    const [action, ...inputs] = ctx.positional;
    if (action !== 'fit' && action !== 'predict') throw new UsageError(`give 'fit' or 'predict' after 'classify'${action ? `, not '${action}'` : ''}`);
    if (typeof ctx.options.model !== 'string') throw new UsageError('--model FILE is required');
    if (typeof ctx.options.lut !== 'string') throw new UsageError('--lut FILE is required');
    const { LutClassifier } = await import('./lut-classifier.js');
    if (action === 'fit') {
      if (inputs.length) throw new UsageError(`unexpected argument '${inputs[0]}' (fit takes its images from --list or --lfw-gender)`);
      const hasList = typeof ctx.options.list === 'string';
      const hasLfw = typeof ctx.options['lfw-gender'] === 'string';
      if (hasList === hasLfw) throw new UsageError('give exactly one of --list FILE and --lfw-gender DIR');
      let list: { files: string[]; labels: Int32Array; names: string[] };
      if (hasList) list = (await import('./images.js')).readListFile(ctx.options.list as string);
      else {
        const { lfwGenderList } = await import('./gender.js');
        const where = findLfw(ctx.options['lfw-gender'] as string, ctx.options.images ? { images: ctx.options.images as string } : undefined);
        const g = lfwGenderList(where, ctx.options['all-people'] ? 'all' : 'view1-train');
        ctx.out.note(`LFW gender: ${g.summary.male} male and ${g.summary.female} female images of ${g.summary.people} people; left out ${g.summary.unlabelledBoth} in both lists, ${g.summary.unlabelledNeither} in neither`);
        list = g;
      }
      if (new Set(list.names).size < 2) throw new UsageError(`a table needs at least two classes; the list has ${list.names.length === 1 ? `only '${list.names[0]}'` : 'none'}`);
      const model = await loadModel(ctx.options.model);
      const pre = resolvePreprocessing(model.preprocessing as ImagePreprocessing);
      const data = await loadDataset({ files: list.files, labels: list.labels, names: list.names }, pre, {
        size: 'network',
        cache: cacheOf(ctx),
        signal: ctx.signal,
        onProgress: loadProgress(ctx, 'decoding'),
        onWarning: (m) => ctx.out.note(`warning: ${m}`),
      });
      ctx.out.endProgress();
      const codes = await encode(model, { images: data.images, shape: data.shape }, { signal: ctx.signal });
      const table = new LutClassifier({ layout: model.layout, classes: list.names, ...lutOptions(ctx) }).fit(codes, data.labels);
      await table.save(ctx.options.lut);
      const counts = table.classCounts;
      ctx.out.print(
        `counted ${table.size} faces (${list.names.map((n, i) => `${n} ${counts[i]}`).join(', ')}) in ${table.bins} bins of layout ${model.layout.name}` +
          `${data.skipped.length ? ` (${data.skipped.length} images skipped)` : ''}; written to ${ctx.options.lut}`,
      );
      return;
    }
    if (inputs.length === 0) throw new UsageError('give at least one image to classify');
    const table = await LutClassifier.load(ctx.options.lut);
    const files = listImages(inputs);
    if (files.length === 0) throw new UsageError('no images found (looked for .jpg, .jpeg, .png, .webp, .tif, .tiff, .pgm)');
    const { model, codes } = await encodeFiles(ctx, ctx.options.model, files);
    if (model.layout.name !== table.layout.name) throw new UsageError(`the model's layout ${model.layout.name} is not the table's layout ${table.layout.name}`);
    const r = table.predictDetailed(codes, lutOptions(ctx));
    const lines = files.map((f, i) => {
      const label = r.labels[i];
      const p = r.proba[i * r.classes + label];
      const how = r.fallback[i] ? 'prior (no bin within reach)' : `${r.samples[i]} faces in ${r.bins[i]} bins, distance <= ${r.distance[i]}`;
      return `${f}\t${table.classNames[label]}\t${p.toFixed(3)}\t${how}`;
    });
    ctx.out.print(lines.join('\n'));
  },
};

// ---------------------------------------------------------------------------------------------
// dcl search-eval

const searchEvalCommand: CommandSpec = {
  name: 'search-eval',
  summary: "the paper's search experiment on LFW: recall against bins visited, for a View 1 model",
  options: {
    model: { type: 'string', help: 'a model trained on View 1 (dcl train --lfw DIR --protocol view1)', value: 'FILE' },
    lfw: { type: 'string', help: 'LFW root (lfw-names.txt, peopleDevTest.txt, images)', value: 'DIR' },
    images: { type: 'string', help: "LFW's image folder under DIR, when not found automatically", value: 'NAME' },
    out: { type: 'string', help: 'folder for search-<layout>.md / .json / .svg', default: 'dcl-search', value: 'DIR' },
    cache: { type: 'string', help: 'folder for the decoded-image cache', value: 'DIR' },
    'no-cache': { type: 'boolean', help: 'decode every image again, write no cache' },
  },
  details:
    'Every image of a peopleDevTest person with more than two images is a query against all LFW faces but itself;\n' +
    "recall is the share of the person's other images whose bins come within the first b bins visited (ascending\n" +
    'distance, ties by code), for b = 1, 2, 4, ... 2^22 bins of the whole code space.',
  async run(ctx) {
    if (ctx.positional.length) throw new UsageError(`unexpected argument '${ctx.positional[0]}'`);
    if (typeof ctx.options.model !== 'string' || typeof ctx.options.lfw !== 'string') throw new UsageError('--model FILE and --lfw DIR are required');
    const { searchEval, searchEvalMarkdown, writeSearchEval } = await import('./search-eval.js');
    const report = await searchEval({
      lfw: ctx.options.lfw,
      ...(ctx.options.images ? { images: ctx.options.images as string } : {}),
      model: ctx.options.model,
      cache: ctx.options['no-cache'] ? false : ((ctx.options.cache as string | undefined) ?? true),
      signal: ctx.signal,
      onProgress: (done, total) => ctx.out.progress(`decoding LFW: ${done}/${total}`),
    });
    ctx.out.endProgress();
    ctx.out.print(searchEvalMarkdown(report));
    const files = writeSearchEval((ctx.options.out as string | undefined) ?? 'dcl-search', report);
    ctx.out.note(`written: ${files.join(', ')}`);
  },
};

export const COMMANDS: CommandSpec[] = [trainCommand, encodeCommand, evalCommand, reproduceCommand, demo, indexCommand, searchEvalCommand, classifyCommand];
