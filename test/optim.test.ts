// Optimisers, schedules and gradient clipping (lib/optim.ts) against values worked out by hand.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  Adam,
  AdamW,
  autograd as ag,
  clipGradNorm,
  constantSchedule,
  cosineSchedule,
  gradNorm,
  scheduleFromSpec,
  SGD,
  stepSchedule,
  Tensor,
  Var,
  warmupSchedule,
  zeroGrad,
} from '../lib/index.js';
import { assertFails, assertSame } from './helpers.js';

const test = suite('optim');

function param(values: number[]): Var {
  return Var.from(values, [values.length], { requiresGrad: true });
}

/** Sets p.grad = g through a backward of sum(p * g) (after zeroGrad). */
function setGrad(p: Var, g: number[]): void {
  zeroGrad([p]);
  ag.sum(ag.mul(p, Tensor.from(g, [g.length]))).backward();
}

function near(got: ArrayLike<number>, want: number[], tol: number, label: string): void {
  assert.is(got.length, want.length, `${label}: length`);
  for (let i = 0; i < want.length; i++)
    assert.ok(Math.abs(got[i] - want[i]) <= tol, `${label}[${i}]: got ${got[i]}, want ${want[i]} (tol ${tol})`);
}

// float32 parameters: values near 1 carry ~6e-8 relative rounding per step.
const TOL = 1e-6;

test('SGD: plain, momentum, Nesterov, weight decay', () => {
  // lr 0.1, g = 0.5 constant, p0 = 1. Momentum 0.9: buf1 = g = 0.5, p1 = 1 - 0.05 = 0.95;
  // buf2 = 0.9*0.5 + 0.5 = 0.95, p2 = 0.95 - 0.095 = 0.855; buf3 = 0.9*0.95 + 0.5 = 1.355,
  // p3 = 0.855 - 0.1355 = 0.7195.
  const p = param([1]);
  const sgd = new SGD([p], { lr: 0.1, momentum: 0.9 });
  const seen: number[] = [];
  for (let i = 0; i < 3; i++) {
    setGrad(p, [0.5]);
    sgd.step();
    seen.push(p.data[0]);
  }
  near(seen, [0.95, 0.855, 0.7195], TOL, 'momentum');
  // Nesterov: d1 = g + 0.9 buf1 = 0.95, p1 = 0.905; buf2 = 0.95, d2 = 0.5 + 0.855 = 1.355, p2 = 0.7695.
  const q = param([1]);
  const nes = new SGD([q], { lr: 0.1, momentum: 0.9, nesterov: true });
  const seenQ: number[] = [];
  for (let i = 0; i < 2; i++) {
    setGrad(q, [0.5]);
    nes.step();
    seenQ.push(q.data[0]);
  }
  near(seenQ, [0.905, 0.7695], TOL, 'nesterov');
  // Plain SGD with L2 weight decay 0.1: g' = 0.5 + 0.1*1 = 0.6, p1 = 1 - 0.06 = 0.94; and on a
  // vector [1, -2] with g = [0.5, 1]: [1 - 0.06, -2 - 0.1*(1 - 0.2)] = [0.94, -2.08].
  const r = param([1, -2]);
  const wd = new SGD([r], { lr: 0.1, weightDecay: 0.1 });
  setGrad(r, [0.5, 1]);
  wd.step();
  near(r.data, [0.94, -2.08], TOL, 'weight decay');
});

test('AdamW: bias-corrected moments and decoupled weight decay, three steps by hand', () => {
  // lr 0.1, betas (0.9, 0.999), eps 1e-8, weightDecay 0.1, p0 = 1, gradients 0.5, -1, 2.
  // Step 1: p = 0.99; m = 0.05, v = 0.00025; m^ = 0.5, v^ = 0.25; p = 0.99 - 0.1*0.5/0.5 = 0.890000002.
  // Step 2: p = 0.8811000020; m = 0.045 - 0.1 = -0.055, v = 0.00024975 + 0.001 = 0.00124975;
  //   m^ = -0.055/0.19 = -0.2894737, v^ = 0.00124975/0.001999 = 0.6251876 (sqrt 0.7906887);
  //   p = 0.8811000020 + 0.1*0.2894737/0.7906887 = 0.9177103542.
  // Step 3: m = -0.0495 + 0.2 = 0.1505, v = 0.00124850 + 0.004 = 0.0052485; m^ = 0.1505/0.271 =
  //   0.5553506, v^ = 0.0052485/0.002997 = 1.751251 (sqrt 1.323349); p = 0.9177103542*0.99 -
  //   0.1*0.5553506/1.323349 = 0.8665676892.
  const p = param([1]);
  const adam = new AdamW([p], { lr: 0.1, weightDecay: 0.1 });
  const seen: number[] = [];
  for (const g of [0.5, -1, 2]) {
    setGrad(p, [g]);
    adam.step();
    seen.push(p.data[0]);
  }
  near(seen, [0.890000002, 0.9177103542, 0.8665676892], TOL, 'adamw');
  // Adam's default decay is 0, AdamW's 0.01 (torch's defaults).
  assert.is(new Adam([param([1])]).groups[0].settings.weightDecay, 0);
  assert.is(new AdamW([param([1])]).groups[0].settings.weightDecay, 0.01);
  assert.is(adam.stepCount, 3);
});

test('parameter groups: each group its own learning rate; parameters without a gradient are left alone', () => {
  const net = param([1, 1]);
  const alphaBeta = param([2]);
  const idle = param([5]);
  const sgd = new SGD(
    [
      { params: [net, idle] },
      { params: [alphaBeta], lr: 1 },
    ],
    { lr: 0.01 },
  );
  setGrad(net, [1, -1]);
  setGrad(alphaBeta, [0.5]);
  sgd.step();
  near(net.data, [0.99, 1.01], TOL, 'group 0 (lr 0.01)');
  near(alphaBeta.data, [1.5], TOL, 'group 1 (lr 1)');
  assert.is(idle.data[0], 5, 'a parameter without a gradient moved');
  assert.is(sgd.stateDict().params[1], null, 'a parameter without a gradient got state');
  assertFails(() => new SGD([{ params: [net] }, { params: [net] }], { lr: 1 }), /one group only/, 'parameter in two groups');
  assertFails(() => new SGD([ag.scale(net, 2)], { lr: 1 }), /leaf Vars/, 'non-leaf');
  assertFails(() => new SGD([net], { lr: -1 }), /options.*lr|params\[0\]\.lr/, 'negative lr');
  assertFails(() => new SGD([net], { lr: 1, nesterov: true }), /momentum > 0/, 'nesterov without momentum');
  assertFails(() => new Adam([net], { betas: [1, 0.9] }), /betas\[0\]/, 'beta1 = 1');
  assertFails(() => new Adam([net], { lr: 1, foo: 1 } as never), /option 'foo'/, 'unknown option');
  assertFails(() => new Adam([]), /non-empty/, 'no parameters');
});

test('schedules at chosen steps, and an optimiser following one', () => {
  const c = constantSchedule();
  assert.equal([0, 5, 1000].map(c), [1, 1, 1]);
  const w = warmupSchedule(4);
  assert.equal([0, 1, 2, 3, 10].map(w), [0.25, 0.5, 0.75, 1, 1]);
  // Warm-up over 2 steps, then half a cosine from 1 to 0.1 over steps 2..10.
  const cos = cosineSchedule({ totalSteps: 10, warmupSteps: 2, minFactor: 0.1 });
  near([0, 1, 2, 6, 10, 20].map(cos), [0.5, 1, 1, 0.55, 0.1, 0.1], 1e-12, 'cosine');
  near([4].map(cos), [0.1 + 0.9 * 0.5 * (1 + Math.cos(Math.PI / 4))], 1e-12, 'cosine at a quarter');
  const st = stepSchedule({ stepSize: 3, gamma: 0.5 });
  assert.equal([0, 2, 3, 5, 6, 9].map(st), [1, 1, 0.5, 0.5, 0.25, 0.125]);
  assert.equal(scheduleFromSpec(cos.spec)(6), cos(6));
  assert.equal(cos.spec, { kind: 'cosine', totalSteps: 10, warmupSteps: 2, minFactor: 0.1 });
  assertFails(() => cosineSchedule({ totalSteps: 5, warmupSteps: 5 }), /warmupSteps below/, 'warm-up as long as the run');
  assertFails(() => warmupSchedule(0), /positive integer/, 'warm-up 0');

  // SGD lr 1 with a 2-step warm-up on g = 1: p = 0 - 0.5 = -0.5, then -0.5 - 1 = -1.5.
  const p = param([0]);
  const sgd = new SGD([p], { lr: 1, schedule: warmupSchedule(2) });
  assert.is(sgd.currentLr(), 0.5);
  setGrad(p, [1]);
  sgd.step();
  assert.is(sgd.currentLr(), 1);
  setGrad(p, [1]);
  sgd.step();
  near(p.data, [-1.5], TOL, 'scheduled SGD');
});

test('clipGradNorm (and the maxGradNorm option) scale gradients to the global norm', () => {
  const a = param([0, 0]);
  const b = param([0]);
  setGrad(a, [3, 4]);
  setGrad(b, [12]);
  assert.is(gradNorm([a, b]), 13);
  const norm = clipGradNorm([a, b], 6.5);
  assert.is(norm, 13);
  near([...a.grad!.data, ...b.grad!.data], [1.5, 2, 6], 1e-6, 'clipped');
  // Below the limit: unchanged.
  assert.ok(Math.abs(clipGradNorm([a, b], 100) - 6.5) < 1e-5);
  near([...a.grad!.data, ...b.grad!.data], [1.5, 2, 6], 1e-6, 'unclipped');
  // SGD lr 1 with maxGradNorm 1 on g = [3, 4]: p = -[0.6, 0.8].
  const p = param([0, 0]);
  const sgd = new SGD([p], { lr: 1, maxGradNorm: 1 });
  setGrad(p, [3, 4]);
  sgd.step();
  near(p.data, [-0.6, -0.8], 1e-6, 'maxGradNorm');
  assert.is(sgd.lastGradNorm, 5);
  assertFails(() => clipGradNorm([a], 0), /maxNorm/, 'maxNorm 0');
});

test('state export: a run resumed from a checkpoint matches the uninterrupted run bit for bit', () => {
  const grads = [
    [0.3, -1.2, 2],
    [-0.7, 0.1, 0.4],
    [1.5, 0.2, -0.9],
    [0.05, -0.3, 0.8],
  ];
  for (const make of [
    (ps: Var[]) => new AdamW(ps, { lr: 0.05, weightDecay: 0.02, schedule: cosineSchedule({ totalSteps: 4, warmupSteps: 1 }) }),
    (ps: Var[]) => new SGD(ps, { lr: 0.05, momentum: 0.9, nesterov: true }),
  ]) {
    const full = param([1, -1, 0.5]);
    const fullOpt = make([full]);
    for (const g of grads) {
      setGrad(full, g);
      fullOpt.step();
    }
    const first = param([1, -1, 0.5]);
    const firstOpt = make([first]);
    for (const g of grads.slice(0, 2)) {
      setGrad(first, g);
      firstOpt.step();
    }
    const checkpoint = structuredClone(firstOpt.stateDict());
    const resumed = param(Array.from(first.data));
    const resumedOpt = make([resumed]);
    resumedOpt.loadStateDict(checkpoint);
    assert.is(resumedOpt.stepCount, 2);
    for (const g of grads.slice(2)) {
      setGrad(resumed, g);
      resumedOpt.step();
    }
    assertSame(resumed.data, full.data, `${fullOpt.kind}: resumed run`);
    const other = fullOpt.kind === 'sgd' ? new Adam([param([1, 2, 3])]) : new SGD([param([1, 2, 3])], { lr: 1 });
    assertFails(() => other.loadStateDict(checkpoint), /optimiser of kind/, 'another kind of optimiser');
    assertFails(() => make([param([1]), param([2])]).loadStateDict(checkpoint), /groups of sizes \[2\]/, 'other parameters');
  }
  const adam = new Adam([param([1, 2])]);
  const state = adam.stateDict();
  state.params = [{ step: 1, buffers: { m: new Float32Array(3) } }];
  assertFails(() => adam.loadStateDict(state), /Float32Array of 2 values/, 'wrong buffer size');
});

test.run();
