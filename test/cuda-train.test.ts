// train({ device }) and encode(model, x, { device }): the device option, CUDA training and
// encoding (lib/cuda-train.ts).
//
// Always run: the option's validation; 'cuda' on a machine where CUDA is not usable throws E_CUDA
// with the reason; 'auto' there is the CPU, bit for bit; and the CUDA trainer's device program
// run on host buffers with the CPU kernels (test/device-host-ops.ts) gives the CPU trainer's
// models and losses bit for bit for every method, and the CPU's codes: that checks everything of
// the device path but the CUDA launchers themselves (which test/cuda.test.ts checks against the
// same CPU kernels). On a GPU (skipped with the reason otherwise; DCL_EXPECT_CUDA=1 makes that a
// failure): a few steps of training per method follow the CPU's loss curve, device codes equal the
// CPU's up to rare rounding-boundary flips, the device step's gradients match the CPU step's, the
// allocator is not asked for memory again once training has started.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { capabilities, cudaStatus, DclError } from '../lib/index.js';
import { codeDistance, parseLayout } from '../lib/codes.js';
import {
  cudaNetworkUnsupported,
  cudaOps,
  cudaTrainingUnsupported,
  cudaTrainLoop,
  DeviceEncoder,
  DeviceNet,
  BATCH_LOSS_METHOD,
} from '../lib/cuda-train.js';
import type { DeviceOps } from '../lib/cuda-train.js';
import { resolvePreprocessing } from '../lib/images.js';
import { native } from '../lib/native.js';
import { DclS, Module } from '../lib/nn.js';
import type { NamedArray } from '../lib/nn.js';
import { Rng } from '../lib/random.js';
import { makeAllPairs } from '../lib/sampling.js';
import { syntheticFaces } from '../lib/synthetic.js';
import { calibrateOutputLayer, checkTrainOptions, cpuTrainLoop, encode, encodeSync, train, trainLoop, trainSync } from '../lib/train.js';
import type { TrainOptions, TrainProgress, TrainSettings } from '../lib/train.js';
import { CollapseDetected } from '../lib/train-setup.js';
import type { LoopProgress } from '../lib/train-setup.js';
import type { VarLike } from '../lib/autograd.js';
import { hostOps } from './device-host-ops.js';

const test = suite('cuda-train');

const status = cudaStatus();
const expectCuda = /^(1|true|yes)$/i.test(process.env.DCL_EXPECT_CUDA ?? '');
if (!status.usable && !expectCuda) console.log(`  cuda-train: device cases skipped (${status.compiled ? 'compiled in' : 'not compiled in'}): ${status.reason}`);

/** A case that runs on the device: skipped (counted as such) where CUDA is not usable. */
function gpuTest(name: string, fn: () => void | Promise<void>): void {
  if (status.usable) test(`[device] ${name}`, fn);
  else if (expectCuda) test(`[device] ${name}`, () => assert.unreachable(`DCL_EXPECT_CUDA is set but CUDA is not usable: ${status.reason}`));
  else test.skip(`[device] ${name}`, fn);
}

/** A case about a machine without a usable CUDA device (skipped on a GPU machine). */
function noGpuTest(name: string, fn: () => void | Promise<void>): void {
  if (!status.usable) test(`[no device] ${name}`, fn);
  else test.skip(`[no device] ${name}`, fn);
}

async function expectCode(fn: () => unknown, code: string, pattern: RegExp | null, label: string): Promise<void> {
  try {
    await fn();
  } catch (error) {
    assert.ok(error instanceof DclError, `${label}: threw ${String(error)} instead of a DclError`);
    assert.is((error as DclError).code, code, `${label}: ${(error as Error).message}`);
    if (pattern) assert.match((error as Error).message, pattern, label);
    return;
  }
  assert.unreachable(`${label}: expected ${code}, but it returned`);
}

function withEnv<T>(name: string, value: string | undefined, fn: () => T): T {
  const before = process.env[name];
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
  try {
    return fn();
  } finally {
    if (before === undefined) delete process.env[name];
    else process.env[name] = before;
  }
}

const data = syntheticFaces({ identities: 12, imagesPerIdentity: 4, size: 32, seed: 11, noise: 0.05 });
const small = { channels: [8, 16], kernels: [5, 3], hidden: 32 };

function options(extra: Partial<TrainOptions>): TrainOptions {
  return {
    data,
    // codeNorm 0: the CUDA trainer has no code normalisation yet (Q >= 8, and 'dp' without its rounding warm-up, default to it).
    network: { ...small, codeNorm: 0 },
    steps: 6,
    identitiesPerBatch: 6,
    imagesPerIdentity: 3,
    learningRate: 5e-4,
    worker: false,
    progressEvery: 1,
    seed: 3,
    ...extra,
  };
}

function sameState(a: Record<string, NamedArray>, b: Record<string, NamedArray>, label: string): void {
  assert.equal(Object.keys(a), Object.keys(b), `${label}: parameter names`);
  for (const name of Object.keys(a)) {
    assert.equal(a[name].shape, b[name].shape, `${label}: ${name} shape`);
    const x = a[name].data, y = b[name].data;
    for (let i = 0; i < x.length; i++)
      if (!Object.is(x[i], y[i])) assert.unreachable(`${label}: ${name}[${i}] ${x[i]} vs ${y[i]}`);
  }
}

const METHODS = [
  ['rounding', '16x2'],
  ['rounding', '8x4'],
  ['dp', '16x1'],
  ['std', '16x1'],
  ['float', '16x1'],
] as const;

// ---------------------------------------------------------------------------------------------
// The option

test('options.device: cpu, cuda or auto, checked for train, trainSync and encode; DCL_DEVICE likewise', async () => {
  for (const bad of ['gpu', 'CUDA', 5, null, true]) {
    await expectCode(() => trainSync(options({ device: bad as never })), 'E_ARG', /options\.device/, `trainSync device ${String(bad)}`);
    await expectCode(() => train(options({ device: bad as never })), 'E_ARG', /options\.device/, `train device ${String(bad)}`);
  }
  const model = trainSync(options({ steps: 2 }));
  await expectCode(() => encode(model, data, { device: 'tpu' as never }), 'E_ARG', /options\.device/, 'encode device tpu');
  await expectCode(() => encodeSync(model, data, { device: 'tpu' as never }), 'E_ARG', /options\.device/, 'encodeSync device tpu');
  withEnv('DCL_DEVICE', 'gpu', () => {
    try {
      trainSync(options({ steps: 2 }));
      assert.unreachable('DCL_DEVICE=gpu was accepted');
    } catch (error) {
      assert.is((error as DclError).code, 'E_ARG');
      assert.match((error as Error).message, /DCL_DEVICE/);
    }
  });
});

test("the default device is the CPU (recorded in the model's training settings); DCL_DEVICE=cpu changes nothing", () => {
  const a = withEnv('DCL_DEVICE', undefined, () => trainSync(options({ steps: 3 })));
  assert.is(a.training.device, 'cpu');
  const b = withEnv('DCL_DEVICE', 'cpu', () => trainSync(options({ steps: 3 })));
  sameState(a.network.stateDict(), b.network.stateDict(), 'DCL_DEVICE=cpu');
  const explicit = trainSync(options({ steps: 3, device: 'cpu' }));
  sameState(a.network.stateDict(), explicit.network.stateDict(), "device 'cpu'");
});

test("device 'cuda' with options the CUDA trainer lacks: E_ARG (before any CUDA check); 'auto' then uses the CPU", async () => {
  await expectCode(() => trainSync(options({ device: 'cuda', optimizer: 'sgd' })), 'E_ARG', /optimizer.*not supported on CUDA yet/, 'sgd');
  const { settings } = checkTrainOptions(options({ device: 'auto', optimizer: 'sgd' }));
  assert.is(settings.device, 'cpu');
  const base = checkTrainOptions(options({})).settings;
  assert.is(cudaTrainingUnsupported(base), null);
  assert.match(cudaTrainingUnsupported(checkTrainOptions(options({ method: 'dp', layout: '16x1', roundingWarmup: 0, network: small })).settings) ?? '', /codeNorm/, 'dp without its warm-up normalises its codes by default');
  assert.is(cudaTrainingUnsupported(checkTrainOptions(options({ method: 'dp', layout: '16x1', network: small })).settings), null, 'dp with its rounding warm-up (the default) does not');
  assert.is(cudaTrainingUnsupported(checkTrainOptions(options({ method: 'std', layout: '16x1', network: small })).settings), null, "'std' has no code normalisation by default");
  assert.match(cudaTrainingUnsupported(checkTrainOptions(options({ hardNegatives: 0.5 })).settings) ?? '', /hardNegatives/);
  await expectCode(
    () => cudaTrainLoop(data, { ...base, network: { ...base.network, codeNorm: 1.7 } }, () => {}, () => false, hostOps()),
    'E_ARG',
    /not supported on CUDA yet/,
    'cudaTrainLoop with codeNorm',
  );
});

test('a network layer the CUDA forward cannot run is named (E_ARG), and encode with auto then stays on the CPU', async () => {
  const net = new DclS({ codeDims: 8, inputShape: [1, 32, 32], ...small, seed: 1 });
  assert.is(cudaNetworkUnsupported(net), null);
  class Scale extends Module {
    forward(x: VarLike) {
      return x as never;
    }
  }
  net.classifier.append(new Scale());
  assert.match(cudaNetworkUnsupported(net) ?? '', /a Scale at classifier\.4.*not supported on CUDA yet/);
  assert.throws(() => new DeviceNet(hostOps(), net, 4, false), /not supported on CUDA yet/);
});

noGpuTest("device 'cuda' where CUDA is not usable: E_CUDA with the reason (train, trainSync, encode, encodeSync)", async () => {
  const reason = capabilities().cuda.reason!;
  assert.type(reason, 'string');
  const escaped = new RegExp(reason.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  await expectCode(() => trainSync(options({ device: 'cuda' })), 'E_CUDA', escaped, 'trainSync');
  await expectCode(() => train(options({ device: 'cuda', worker: true })), 'E_CUDA', escaped, 'train');
  await expectCode(() => withEnv('DCL_DEVICE', 'cuda', () => trainSync(options({}))), 'E_CUDA', escaped, 'DCL_DEVICE=cuda');
  const model = trainSync(options({ steps: 2 }));
  await expectCode(() => encode(model, data, { device: 'cuda' }), 'E_CUDA', escaped, 'encode');
  await expectCode(() => encodeSync(model, data, { device: 'cuda' }), 'E_CUDA', escaped, 'encodeSync');
});

noGpuTest("device 'auto' where CUDA is not usable is the CPU: the same model bit for bit, and the same codes", async () => {
  const cpu = trainSync(options({ device: 'cpu' }));
  const auto = trainSync(options({ device: 'auto' }));
  sameState(cpu.network.stateDict(), auto.network.stateDict(), 'auto vs cpu');
  assert.is(auto.alpha, cpu.alpha);
  assert.is(auto.beta, cpu.beta);
  assert.equal(auto.training, cpu.training);
  const inWorker = await train(options({ device: 'auto', worker: true }));
  sameState(cpu.network.stateDict(), inWorker.network.stateDict(), 'auto in the worker vs cpu');
  const codes = encodeSync(cpu, data);
  assert.equal(await encode(cpu, data, { device: 'auto' }), codes);
  assert.equal(encodeSync(cpu, data, { device: 'auto' }), codes);
});

// ---------------------------------------------------------------------------------------------
// The device program on host buffers and the CPU kernels

for (const [method, layout] of METHODS) {
  test(`device program on the host, ${method} ${layout}: the CPU trainer's losses and model bit for bit, buffers freed`, () => {
    const { data: d, settings } = checkTrainOptions(options({ method, layout, steps: 5 }));
    const cpuProgress: TrainProgress[] = [];
    const cpu = trainLoop(d, settings, (p) => cpuProgress.push(p), () => false);
    const ops = hostOps();
    const devProgress: LoopProgress[] = [];
    const dev = cudaTrainLoop(d, settings, (p) => devProgress.push(p), () => false, ops);
    assert.is(devProgress.length, cpuProgress.length);
    devProgress.forEach((p, i) => {
      const q = cpuProgress[i];
      assert.equal(
        [p.step, p.epoch, p.totalSteps, p.loss, p.alpha, p.beta, p.learningRate, p.distinctCodes],
        [q.step, q.epoch, q.totalSteps, q.loss, q.alpha, q.beta, q.learningRate, q.distinctCodes],
        `step ${i + 1}`,
      );
    });
    sameState(cpu.state, dev.state, `${method} ${layout}`);
    assert.is(dev.alpha, cpu.alpha);
    assert.is(dev.beta, cpu.beta);
    assert.is(dev.finalLoss, cpu.finalLoss);
    assert.is(dev.steps, cpu.steps);
    assert.is(ops.live(), 0, 'every buffer freed');
    // Per step: one upload of the batch images, one download of its outputs, one loss call (pairs
    // in, three values out); the uploads before the first step are the weights and zeroed Adam
    // moments; the downloads after the last step the weights. A 'dp' step after the warm-up also
    // runs the rounding loss and blends dL/dp on the host: one more loss call, dL/dp down twice
    // and up once.
    const params = Object.keys(cpu.state).length;
    const blended = settings.roundingShare > 0 ? 5 - Math.floor(settings.roundingWarmup * 5) : 0;
    assert.is(blended, method === 'dp' ? 3 : 0);
    assert.is(ops.calls.get('batchLoss'), 5 + blended);
    assert.is(ops.calls.get('upload'), 5 + 3 * params + blended);
    assert.is(ops.calls.get('download'), 5 + params + 2 * blended);
    assert.is(ops.calls.get('adamUpdate'), 5 * params);
  });
}

test('device program on the host with the sigmoid gradient floor: the CPU trainer bit for bit', () => {
  for (const [method, layout] of [['rounding', '8x4'], ['dp', '16x1']] as const) {
    const share = method === 'dp' ? { roundingShare: 0 } : {};
    const { data: d, settings } = checkTrainOptions(options({ method, layout, roundingWarmup: 0.5, sigmoidGradientFloor: 0.05, steps: 4, ...share }));
    const cpu = trainLoop(d, settings, () => {}, () => false);
    const ops = hostOps();
    const dev = cudaTrainLoop(d, settings, () => {}, () => false, ops);
    sameState(cpu.state, dev.state, `${method} ${layout} with the floor`);
    assert.is(dev.finalLoss, cpu.finalLoss);
    // dL/dp goes out and back once per step.
    const params = Object.keys(cpu.state).length;
    assert.is(ops.calls.get('download'), 2 * 4 + params);
    assert.is(ops.calls.get('upload'), 2 * 4 + 3 * params);
    // And the floor changes training.
    const plain = trainLoop(d, { ...settings, sigmoidGradientFloor: 0 }, () => {}, () => false);
    assert.not.equal(Array.from(plain.state['classifier.2.weight'].data), Array.from(cpu.state['classifier.2.weight'].data));
  }
});

test("device program on the host, 'dp' with the rounding loss kept beside it: the CPU trainer bit for bit", () => {
  for (const floor of [0, 0.05]) {
    const { data: d, settings } = checkTrainOptions(options({ method: 'dp', layout: '16x1', roundingWarmup: 0.5, roundingShare: 0.5, sigmoidGradientFloor: floor, steps: 4 }));
    const cpu = trainLoop(d, settings, () => {}, () => false);
    const ops = hostOps();
    const dev = cudaTrainLoop(d, settings, () => {}, () => false, ops);
    sameState(cpu.state, dev.state, `dp, share 0.5, floor ${floor}`);
    assert.is(dev.finalLoss, cpu.finalLoss);
    assert.is(dev.alpha, cpu.alpha);
    // Steps 2 and 3 (after the warm-up) run both losses and blend dL/dp on the host.
    assert.is(ops.calls.get('batchLoss'), 4 + 2);
    // The share changes training.
    const alone = trainLoop(d, { ...settings, roundingShare: 0 }, () => {}, () => false);
    assert.not.equal(Array.from(alone.state['classifier.2.weight'].data), Array.from(cpu.state['classifier.2.weight'].data));
  }
});

test('device program on the host with stored images, augmentation and learnAlphaBeta false: the CPU trainer bit for bit', () => {
  const stored = syntheticFaces({ identities: 12, imagesPerIdentity: 4, size: 36, seed: 11, noise: 0.05 });
  const pre = resolvePreprocessing({ size: 32, storedSize: 36 });
  for (const extra of [{}, { learnAlphaBeta: false, schedule: 'step' as const, singlesPerBatch: 2 }]) {
    const { data: d, settings } = checkTrainOptions({ ...options({ steps: 4, ...extra }), data: stored, preprocessing: pre });
    const cpu = trainLoop(d, settings, () => {}, () => false);
    const dev = cudaTrainLoop(d, settings, () => {}, () => false, hostOps());
    sameState(cpu.state, dev.state, `augmented ${JSON.stringify(extra)}`);
    assert.is(dev.alpha, cpu.alpha);
    assert.is(dev.finalLoss, cpu.finalLoss);
  }
});

test('device program on the host: the collapse guard fires at the CPU trainer\'s step, buffers freed', () => {
  // A learning rate that collapses every image onto one code within a few steps (test/train.test.ts).
  const { data: d, settings } = checkTrainOptions(options({ layout: '8x4', steps: 40, learningRate: 0.02, collapsePatience: 5 }));
  const stepOf = (run: () => unknown): number => {
    try {
      run();
    } catch (error) {
      if (error instanceof CollapseDetected) return error.step;
      throw error;
    }
    return assert.unreachable('expected the guard to fire') as never;
  };
  const ops = hostOps();
  const cpu = stepOf(() => cpuTrainLoop(d, settings, () => {}, () => false));
  const dev = stepOf(() => cudaTrainLoop(d, settings, () => {}, () => false, ops));
  assert.is(dev, cpu);
  assert.ok(cpu >= 4 && cpu < 40, `step ${cpu}`);
  assert.is(ops.live(), 0, 'every buffer freed');
});

test('device program on the host: stops at the next step when asked (E_ABORTED), buffers freed', async () => {
  const { data: d, settings } = checkTrainOptions(options({ steps: 5 }));
  const ops = hostOps();
  let steps = 0;
  await expectCode(() => cudaTrainLoop(d, settings, () => steps++, () => steps >= 2, ops), 'E_ABORTED', /after 2 of 5 steps/, 'abort');
  assert.is(ops.live(), 0);
});

test('device encoder on the host: the CPU codes bit for bit, over batch boundaries, for every layout, with mirror averaging', () => {
  for (const [layout, mirrorAverage] of [['16x2', false], ['32x1', false], ['4x8', false], ['8x4', true]] as const) {
    const model = trainSync(options({ layout, steps: 3, mirrorAverage }));
    const cpu = encodeSync(model, data, { batchSize: 7 });
    const ops = hostOps();
    const encoder = new DeviceEncoder(model, 7, ops);
    const [c, h, w] = model.architecture.inputShape;
    const per = c * h * w;
    const count = data.labels.length;
    const out = new Int32Array(count);
    for (let start = 0; start < count; start += 7) {
      const n = Math.min(7, count - start);
      out.set(encoder.codes(data.images.subarray(start * per, (start + n) * per), n), start);
    }
    encoder.dispose();
    assert.equal(out, cpu, layout);
    assert.is(ops.live(), 0);
    // Per batch: the images in, the codes out (with mirror averaging: both passes' outputs).
    assert.is(ops.traffic.down, mirrorAverage ? 2 * count * model.layout.n * 4 : count * 4);
  }
});

// ---------------------------------------------------------------------------------------------
// On the GPU

/** |a - b| <= abs + rel |b| for every entry (the first failure is reported). */
function close(a: ArrayLike<number>, b: ArrayLike<number>, abs: number, rel: number, label: string): void {
  assert.is(a.length, b.length, `${label}: length`);
  for (let i = 0; i < a.length; i++)
    if (!(Math.abs(a[i] - b[i]) <= abs + rel * Math.abs(b[i]))) assert.unreachable(`${label}: [${i}] ${a[i]} vs ${b[i]} (abs ${abs}, rel ${rel})`);
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

for (const [method, layout] of METHODS) {
  gpuTest(`train({ device: 'cuda' }) ${method} ${layout}: the CPU's loss curve over 10 steps within tolerance`, () => {
    const cpuLoss: number[] = [];
    const gpuLoss: number[] = [];
    const cpu = trainSync(options({ method, layout, steps: 10, device: 'cpu', onProgress: (p) => cpuLoss.push(p.loss) }));
    const gpu = trainSync(options({ method, layout, steps: 10, device: 'cuda', onProgress: (p) => gpuLoss.push(p.loss) }));
    assert.is(gpu.training.device, 'cuda');
    // The first step sees the same weights: only float rounding differs (for rounding, a value
    // that lands on the other side of a level boundary moves a few pair distances by one: about
    // 3e-3 of loss each, and rare). Later steps drift a little.
    close(gpuLoss.slice(0, 1), cpuLoss.slice(0, 1), method === 'rounding' ? 5e-3 : 1e-4, 1e-4, `${method} first loss`);
    close(gpuLoss, cpuLoss, 2e-3, 1e-2, `${method} loss curve`);
    close([gpu.alpha, gpu.beta], [cpu.alpha, cpu.beta], 1e-3, 1e-3, `${method} alpha, beta`);
    // Weights: Adam turns a gradient of about zero into a step of up to lr in the direction of its
    // sign, which rounding can flip, so a few weights may differ by up to ~2 lr per step; almost
    // all must agree closely.
    const a = gpu.network.stateDict(), b = cpu.network.stateDict();
    for (const name of Object.keys(b)) {
      const x = a[name].data, y = b[name].data;
      let far = 0;
      for (let i = 0; i < y.length; i++) {
        const d = Math.abs(x[i] - y[i]);
        assert.ok(d <= 2 * 10 * 5e-4 + 1e-3 * Math.abs(y[i]), `${method} ${name}[${i}]: ${x[i]} vs ${y[i]}`);
        if (d > 1e-4 + 1e-3 * Math.abs(y[i])) far++;
      }
      assert.ok(far <= Math.max(2, 0.01 * y.length), `${method} ${name}: ${far} of ${y.length} weights differ by more than 1e-4`);
    }
  });
}

gpuTest("train({ device: 'cuda' }) in the worker: a model that encodes; a second run asks the allocator for no new memory", async () => {
  const first = await train(options({ steps: 4, device: 'cuda', worker: true }));
  assert.is(first.training.device, 'cuda');
  assert.is(encodeSync(first, data).length, data.labels.length);
  trainSync(options({ steps: 2, device: 'cuda' }));
  const before = native.cudaMemoryStats();
  trainSync(options({ steps: 6, device: 'cuda' }));
  const after = native.cudaMemoryStats();
  assert.is(after.deviceAllocations, before.deviceAllocations, 'no cudaMalloc once the sizes have been seen');
  assert.ok(after.reuses > before.reuses, 'blocks reused from the cache');
});

gpuTest("encode(model, x, { device: 'cuda' }) equals the CPU's codes up to rare rounding-boundary flips", async () => {
  for (const [layout, mirrorAverage] of [['16x2', false], ['32x1', false], ['8x4', false], ['8x4', true]] as const) {
    const model = trainSync(options({ layout, steps: 8, mirrorAverage }));
    const many = syntheticFaces({ identities: 40, imagesPerIdentity: 8, size: 32, seed: 5, noise: 0.05 });
    const cpu = encodeSync(model, many, { batchSize: 64 });
    const gpu = await encode(model, many, { device: 'cuda', batchSize: 50 });
    assert.equal(encodeSync(model, many, { device: 'cuda', batchSize: 13 }), gpu, `${layout}: batch size does not matter on the device`);
    let differing = 0;
    for (let i = 0; i < cpu.length; i++) {
      if (cpu[i] === gpu[i]) continue;
      differing++;
      // A flip moves one dimension by one level (more than one at once is not a rounding effect).
      assert.ok(codeDistance(cpu[i], gpu[i], layout) <= 2, `${layout}: code ${i} differs by more than a boundary flip`);
    }
    assert.ok(differing <= Math.max(2, Math.ceil(0.01 * cpu.length)), `${layout}: ${differing} of ${cpu.length} codes differ`);
  }
});

gpuTest('one device step against the CPU step: loss, d/dalpha, d/dbeta and every parameter gradient, for every method', () => {
  for (const [method, layout] of METHODS) {
    const l = parseLayout(layout);
    const network = new DclS({ codeDims: l.n, inputShape: [1, 32, 32], ...small, seed: 9 });
    calibrateOutputLayer(network, data, 9);
    const owner = new Int32Array(18).map((_, i) => Math.floor(i / 3));
    const batch = makeAllPairs(new Int32Array(18).map((_, i) => i), owner);
    const rng = new Rng(4);
    const images = data.images.slice(0, 18 * 32 * 32);
    for (let i = 0; i < images.length; i++) images[i] += 0.01 * rng.normal();
    let weightSum = 0;
    for (let k = 0; k < batch.weights.length; k++) weightSum += batch.weights[k];
    const run = (ops: DeviceOps) => {
      const net = new DeviceNet(ops, network, 18, true);
      try {
        ops.upload(net.input, images);
        net.forward(18);
        const result = new Float64Array(3);
        ops.batchLoss(net.output, net.outputGrad, batch.pairs, batch.labels, batch.weights, result, [18, l.n, batch.labels.length, l.levels, BATCH_LOSS_METHOD[method]], 0.3, 2.0, weightSum, 0.05);
        net.backward(18);
        const grads = net.params.map((q) => {
          const g = new Float32Array(q.size);
          ops.download(q.grad, g);
          return g;
        });
        const p = new Float32Array(18 * l.n);
        ops.download(net.output, p);
        return { result, grads, p };
      } finally {
        net.dispose();
      }
    };
    const cpu = run(hostOps());
    const gpu = run(cudaOps());
    close(gpu.p, cpu.p, 1e-5, 1e-4, `${method}: f_model`);
    if (method === 'rounding') {
      // A value on the other side of a level boundary changes the rounded distances: then the
      // two steps differ for a legitimate reason (rare: the values differ by ~1e-7).
      const flips = gpu.p.filter((v, i) => Math.floor(l.levels * v) !== Math.floor(l.levels * cpu.p[i])).length;
      if (flips > 0) {
        console.log(`  (${method} ${layout}: ${flips} rounding-boundary flips between the devices; loss and gradients not compared)`);
        continue;
      }
    }
    close(gpu.result, cpu.result, 1e-5, 1e-4, `${method}: loss, d/dalpha, d/dbeta`);
    gpu.grads.forEach((g, i) => close(g, cpu.grads[i], 1e-3 * Math.max(1e-6, maxAbs(cpu.grads[i])), 1e-2, `${method}: gradient of parameter ${i}`));
  }
});

test.run();
