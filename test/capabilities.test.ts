// capabilities(), setIsa / withIsa, setThreads and measureFmaPeak: the runtime controls the other
// suites rely on, plus a stress run of the thread pool in a child process (a hang there would
// otherwise stop the whole test run).
import { spawnSync } from 'node:child_process';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  ALL_ISAS,
  capabilities,
  conv2d,
  conv2dBackwardInput,
  conv2dBackwardWeight,
  DclError,
  linear,
  maxPool2d,
  measureFmaPeak,
  setIsa,
  setThreads,
  sigmoid,
  Tensor,
  withIsa,
} from '../lib/index.js';
import { conv2dForwardRef, convGeometry, randomFloat32, Rng } from './reference.js';
import { assertClose, assertSame, forEachIsa, isasUnderTest, sumTolerance } from './helpers.js';

const test = suite('capabilities');

/** Seconds per FMA peak measurement: short, the number only has to be positive and finite. */
const PEAK_SECONDS = 0.05;

test('capabilities() describes the CPU: serial always, the active ISA among the supported ones, and CUDA', () => {
  const c = capabilities();
  assert.ok(Array.isArray(c.isas), 'isas is an array');
  assert.ok(c.isas.includes('serial'), `isas ${c.isas} lacks serial`);
  assert.is(new Set(c.isas).size, c.isas.length, 'isas has no duplicates');
  for (const isa of c.isas) assert.ok(ALL_ISAS.includes(isa), `unknown ISA ${isa}`);
  // Listed from the reference to the widest, as ALL_ISAS orders them.
  assert.equal(c.isas, ALL_ISAS.filter((isa) => c.isas.includes(isa)), 'isas in ALL_ISAS order');
  assert.ok(c.isas.includes(c.isa), `active ISA ${c.isa} is not in ${c.isas}`);
  const forced = process.env.DCL_ISA;
  if (forced) assert.is(c.isa, forced, 'DCL_ISA selects the ISA at import');
  else assert.is(c.isa, c.isas[c.isas.length - 1], 'without DCL_ISA the widest supported ISA is active');
  assert.ok(Number.isInteger(c.threads) && c.threads >= 1 && c.threads <= 256, `threads ${c.threads}`);
  assert.ok(Number.isInteger(c.hardwareThreads) && c.hardwareThreads >= 1, `hardwareThreads ${c.hardwareThreads}`);
  if (!process.env.DCL_THREADS) assert.is(c.threads, c.hardwareThreads, 'without DCL_THREADS the pool has one thread per core');
  // CUDA: compiled in or not; when not usable, a reason (test/cuda.test.ts checks the rest).
  assert.type(c.cuda.compiled, 'boolean');
  assert.type(c.cuda.usable, 'boolean');
  if (!c.cuda.compiled) assert.is(c.cuda.usable, false, 'cuda.usable without CUDA compiled in');
  if (!c.cuda.usable) {
    assert.type(c.cuda.reason, 'string');
    assert.ok((c.cuda.reason ?? '').trim().length > 0, 'cuda.reason is empty');
  }
  // A copy: changing it does not change the next answer.
  const usable = c.cuda.usable;
  c.isas.push('bogus' as never);
  c.cuda.usable = !usable;
  assert.not.ok(capabilities().isas.includes('bogus' as never), 'capabilities() returned shared state');
  assert.is(capabilities().cuda.usable, usable);
});

test('setIsa round trip for every supported ISA; withIsa restores the previous ISA, also when fn throws', () => {
  const original = capabilities().isa;
  try {
    for (const isa of capabilities().isas) {
      setIsa(isa);
      assert.is(capabilities().isa, isa, `after setIsa('${isa}')`);
    }
  } finally {
    setIsa(original);
  }
  assert.is(capabilities().isa, original);
  for (const isa of capabilities().isas) {
    assert.is(
      withIsa(isa, () => capabilities().isa),
      isa,
      `inside withIsa('${isa}')`,
    );
    assert.is(capabilities().isa, original, `after withIsa('${isa}')`);
    assert.throws(
      () =>
        withIsa(isa, () => {
          throw new Error('inside');
        }),
      /inside/,
    );
    assert.is(capabilities().isa, original, `after withIsa('${isa}') threw`);
  }
  // An invalid ISA leaves the active one alone.
  assert.throws(() => setIsa('bogus' as never), (e: unknown) => e instanceof DclError && e.code === 'E_ARG');
  assert.is(capabilities().isa, original);
});

test('forEachIsa visits exactly the ISAs under test (DCL_ISA alone when set)', () => {
  const seen: string[] = [];
  forEachIsa((isa) => {
    assert.is(capabilities().isa, isa);
    seen.push(isa);
  });
  assert.equal(seen, isasUnderTest());
  if (process.env.DCL_ISA) assert.equal(seen, [process.env.DCL_ISA]);
  else assert.equal(seen, capabilities().isas);
});

test('setThreads(1) and back: conv2d forward is bit-identical, the gradients agree; more threads than work is fine', () => {
  const original = capabilities().threads;
  const rng = new Rng(8);
  const [n, cin, h, w, cout] = [3, 17, 13, 11, 33];
  const g = convGeometry(n, cin, h, w, cout, [3, 3], [1, 1], [1, 1]);
  const x = new Tensor(randomFloat32(rng, n * cin * h * w), [n, cin, h, w]);
  const wt = new Tensor(randomFloat32(rng, cout * cin * 9), [cout, cin, 3, 3]);
  const b = new Tensor(randomFloat32(rng, cout), [cout]);
  const dy = new Tensor(randomFloat32(rng, n * cout * g.oh * g.ow), [n, cout, g.oh, g.ow]);
  const ref = conv2dForwardRef(x.data, wt.data, b.data, g);
  try {
    forEachIsa((isa) => {
      setThreads(original);
      const yMany = conv2d(x, wt, b, { padding: 1 }).data;
      const dxMany = conv2dBackwardInput(dy, wt, [n, cin, h, w], { padding: 1 }).data;
      const dwMany = conv2dBackwardWeight(x, dy, { kernelSize: 3, padding: 1 }).weight.data;
      for (const threads of [1, 3, 7]) {
        setThreads(threads);
        assert.is(capabilities().threads, threads, `setThreads(${threads})`);
        const y = conv2d(x, wt, b, { padding: 1 }).data;
        assertSame(y, yMany, `[${isa}] conv2d forward on ${threads} vs ${original} threads`);
        assertClose(y, ref.value, sumTolerance(ref), `[${isa}] conv2d forward on ${threads} threads vs reference`);
        const dx = conv2dBackwardInput(dy, wt, [n, cin, h, w], { padding: 1 }).data;
        const dw = conv2dBackwardWeight(x, dy, { kernelSize: 3, padding: 1 }).weight.data;
        // A reduction may be split differently across threads: equal to rounding, not bit for bit.
        assertClose(dx, dxMany, (i) => 1e-5 * (1 + Math.abs(dxMany[i])), `[${isa}] conv2dBackwardInput on ${threads} threads`);
        assertClose(dw, dwMany, (i) => 1e-4 * (1 + Math.abs(dwMany[i])), `[${isa}] conv2dBackwardWeight on ${threads} threads`);
        // Work smaller than the thread count (1 plane, 1 row).
        const tiny = maxPool2d(new Tensor(Float32Array.from([3, 1, 4, 1, 5, 9]), [1, 1, 1, 6]), { kernelSize: [1, 2] });
        assert.equal(Array.from(tiny.output.data), [3, 4, 9]);
        assert.equal(Array.from(tiny.argmax), [0, 2, 5]);
      }
    });
  } finally {
    setThreads(original);
  }
  assert.is(capabilities().threads, original, 'thread count restored');
});

test('measureFmaPeak returns a positive, finite GFLOP/s for every ISA on 1 thread and on all threads', () => {
  const threads = capabilities().threads;
  const peaks = new Map<string, number>();
  for (const isa of capabilities().isas) {
    for (const t of [1, threads]) {
      const gflops = measureFmaPeak(isa, t, PEAK_SECONDS);
      assert.type(gflops, 'number');
      assert.ok(Number.isFinite(gflops) && gflops > 0, `measureFmaPeak('${isa}', ${t}) = ${gflops}`);
      if (t === 1) peaks.set(isa, gflops);
    }
  }
  // The wider ISAs really run wider code: AVX2 has 8 lanes and FMA against scalar code (measured
  // 6x here); a 1.5x margin survives a noisy, shared host.
  const serial = peaks.get('serial')!;
  for (const isa of ['avx2', 'avx512']) {
    const peak = peaks.get(isa);
    if (peak !== undefined) assert.ok(peak > 1.5 * serial, `${isa} FMA peak ${peak.toFixed(1)} GFLOP/s is not above serial ${serial.toFixed(1)}`);
  }
  // A valid ISA that is not the active one can be measured without switching to it.
  const before = capabilities().isa;
  measureFmaPeak('serial', 1, 0.01);
  assert.is(capabilities().isa, before);
});

test('the thread pool survives thousands of short regions and resizes in a row (child process, 60 s limit)', () => {
  // Back-to-back tiny parallel regions and pool resizes between them are where a lost wake-up or
  // a worker that misses a generation hangs forever; run them where a hang becomes a timeout.
  const script = `
    const m = await import(${JSON.stringify(new URL('../lib/index.js', import.meta.url).href)});
    const x = new m.Tensor(new Float32Array(3 * 5 * 5).fill(1), [1, 3, 5, 5]);
    const w = new m.Tensor(new Float32Array(4 * 3 * 9).fill(1), [4, 3, 3, 3]);
    const v = new m.Tensor(new Float32Array(40000).fill(0.5), [40000]);
    let checks = 0;
    for (let round = 0; round < 60; round++) {
      m.setThreads([1, 2, 3, 4, 2][round % 5]);
      for (const isa of m.capabilities().isas) m.withIsa(isa, () => {
        for (let i = 0; i < 40; i++) {
          const y = m.conv2d(x, w, null, { padding: 1 }).data;
          if (y[6] !== 27 || y[0] !== 12) throw new Error('wrong conv result ' + y[6] + ' ' + y[0]);
          const s = m.sigmoid(v).data;
          if (Math.abs(s[39999] - 0.62245935) > 1e-6) throw new Error('wrong sigmoid ' + s[39999]);
          checks++;
        }
      });
    }
    console.log('ok ' + checks);`;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...process.env, DCL_ISA: '', DCL_THREADS: '' },
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.ok(child.signal === null, `the child was killed by ${child.signal} (a hang past 60 s?): ${child.stderr}`);
  assert.is(child.status, 0, `the child failed: ${child.stderr}`);
  assert.match(child.stdout, /^ok \d+/m);
});

test('ops work after the runtime calls above (the active ISA and thread count are intact)', () => {
  const x = new Tensor(Float32Array.from([0, 1, -1, 2]), [2, 2]);
  const y = linear(x, new Tensor(Float32Array.from([1, 1]), [1, 2]), new Tensor(Float32Array.from([0.5]), [1]));
  assert.equal(Array.from(y.data), [1.5, 1.5]);
  const s = sigmoid(new Tensor(Float32Array.from([0]), [1]));
  assert.ok(Math.abs(s.data[0] - 0.5) < 1e-7);
});

test.run();
