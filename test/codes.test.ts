// Code layouts (lib/codes.ts): layout parsing, quantize + pack on every ISA path against a plain
// TypeScript reference (boundary values 0, -0, the largest float below 1, 1, > 1, < 0, NaN, +-inf,
// level boundaries and the float just below each), pack / unpack / quantize round trips for the
// paper's layouts and others (5x6, 1x32, 3x10, 1x1, 31x1), batched distances (L1 and Hamming)
// against brute force, with tails of every SIMD width and the threaded path, and argument errors.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { codeDistance, codeDistances, DclError, dimensionsInUse, maxDistance, pack, PAPER_LAYOUTS, parseLayout, quantize, unpack } from '../lib/index.js';
import type { CodeLayout, CodeMetric } from '../lib/index.js';
import { codeDistanceRef, Rng } from './reference.js';
import { assertSame, forEachIsa } from './helpers.js';

const test = suite('codes');

const LAYOUTS = ['32x1', '16x2', '8x4', '4x8', '5x6', '1x32', '3x10', '1x1', '31x1', '2x16', '6x5'];
/** Largest float32 below 1. */
const BELOW_ONE = 1 - 2 ** -24;

// ---------------------------------------------------------------------------------------------
// References

function levelRef(p: number, q: number): number {
  const v = Math.fround(p) * 2 ** q; // exact: a power of two
  if (!(v > 0)) return 0;
  if (v >= 2 ** q) return 2 ** q - 1;
  return Math.floor(v);
}

function quantizeRef(p: Float32Array, l: CodeLayout): Int32Array {
  const count = p.length / l.n;
  const out = new Int32Array(count);
  for (let c = 0; c < count; c++) {
    let code = 0;
    for (let i = 0; i < l.n; i++) code += levelRef(p[c * l.n + i], l.q) * 2 ** (i * l.q);
    out[c] = code | 0;
  }
  return out;
}

function levelsOf(code: number, l: CodeLayout): number[] {
  const u = code >>> 0;
  return Array.from({ length: l.n }, (_, i) => Math.floor(u / 2 ** (i * l.q)) % 2 ** l.q);
}

/** Random probabilities with boundary values mixed in. */
function randomProbabilities(rng: Rng, length: number, q: number): Float32Array {
  const specials = [0, -0, BELOW_ONE, 1, 1.5, -0.3, NaN, Infinity, -Infinity, 1e-45, 2 ** -q, 0.5];
  return Float32Array.from({ length }, () => {
    const r = rng.float();
    if (r < 0.25) return rng.pick(specials);
    if (r < 0.4) {
      // A level boundary k / 2^q, or the float just below it.
      const k = rng.int(1, Math.min(2 ** q, 2 ** 20) - 1) / 2 ** q;
      return rng.bool() ? k : k * (1 - 2 ** -24);
    }
    return rng.float();
  });
}

function randomCodes(rng: Rng, count: number, l: CodeLayout): Int32Array {
  const mask = l.bits >= 32 ? 0xffffffff : 2 ** l.bits - 1;
  return Int32Array.from({ length: count }, () => {
    const r = rng.float();
    if (r < 0.05) return 0;
    if (r < 0.1) return mask | 0;
    return (Math.floor(rng.float() * 2 ** 32) & mask) | 0;
  });
}

// ---------------------------------------------------------------------------------------------
// Layouts

test('parseLayout accepts every n x Q with n*Q <= 32 and rejects the rest', () => {
  for (const name of [...PAPER_LAYOUTS, ...LAYOUTS]) {
    const l = parseLayout(name);
    const [n, q] = name.split('x').map(Number);
    assert.equal({ ...l }, { n, q, bits: n * q, levels: 2 ** q, name });
    assert.equal({ ...parseLayout({ n, q }) }, { ...l });
    assert.equal({ ...parseLayout(l) }, { ...l }, 'a parsed layout passes through');
  }
  assert.is(parseLayout('8X4').name, '8x4');
  let accepted = 0;
  for (let n = 0; n <= 34; n++)
    for (let q = 0; q <= 34; q++) {
      const valid = n >= 1 && q >= 1 && q <= 32 && n * q <= 32;
      try {
        parseLayout(`${n}x${q}`);
        assert.ok(valid, `${n}x${q} should be rejected`);
        accepted++;
      } catch (error) {
        assert.ok(!valid, `${n}x${q} should be accepted`);
        assert.instance(error, DclError);
        assert.is((error as DclError).code, 'E_ARG');
        assert.match((error as Error).message, new RegExp(`^Expected a layout 'nxQ' .* for layout but received "${n}x${q}"$`));
      }
    }
  let expected = 0;
  for (let q = 1; q <= 32; q++) expected += Math.floor(32 / q);
  assert.is(accepted, expected, 'number of valid layouts');
  for (const bad of ['8x', 'x4', ' 8x4', '8x4 ', '8*4', '8x4x1', '', 'eight', '-8x4', '8.0x4']) {
    try {
      parseLayout(bad);
      assert.unreachable(`${JSON.stringify(bad)} accepted`);
    } catch (error) {
      assert.instance(error, DclError);
      assert.match((error as Error).message, /^Expected a layout 'nxQ' with n >= 1, Q from 1 to 32 and n\*Q <= 32 .* for layout but received /);
    }
  }
  for (const bad of [8, null, undefined, [8, 4], { n: 8 }, { n: 8, q: 4.5 }, { n: 0, q: 4 }, { n: 8, q: 4, x: 1 }, new Int32Array(2)]) {
    try {
      parseLayout(bad, 'options.layout');
      assert.unreachable(`${String(bad)} accepted`);
    } catch (error) {
      assert.instance(error, DclError);
      assert.is((error as DclError).code, 'E_ARG');
      assert.match((error as Error).message, /^Expected .* for options\.layout but received /);
    }
  }
});

test('maxDistance', () => {
  assert.is(maxDistance('32x1'), 32);
  assert.is(maxDistance('16x2'), 48);
  assert.is(maxDistance('8x4'), 120);
  assert.is(maxDistance('4x8'), 1020);
  assert.is(maxDistance('1x32'), 2 ** 32 - 1);
  assert.is(maxDistance('8x4', 'hamming'), 32);
  assert.is(maxDistance('5x6', 'hamming'), 30);
  assert.is(maxDistance({ n: 3, q: 10 }), 3 * 1023);
});

// ---------------------------------------------------------------------------------------------
// quantize / pack / unpack

test('quantize vs reference on every ISA, every layout, boundary values, tails of 1..33 codes and a threaded batch', () => {
  for (const name of LAYOUTS) {
    const l = parseLayout(name);
    for (const count of [1, 2, 7, 8, 9, 15, 16, 17, 31, 33, 100, 40_000]) {
      const rng = new Rng(count * 64 + l.n * 33 + l.q);
      const p = randomProbabilities(rng, count * l.n, l.q);
      const want = quantizeRef(p, l);
      forEachIsa(() => {
        // Into an unaligned view with sentinels on both sides: no write outside it.
        const buffer = new Int32Array(count + 64).fill(0x5a5a5a5a);
        const out = buffer.subarray(19, 19 + count);
        assert.is(quantize({ data: p, shape: [count, l.n] }, name, { out }), out);
        assertSame(out, want, `quantize ${name} x ${count}`);
        for (let i = 0; i < buffer.length; i++) if (i < 19 || i >= 19 + count) assert.is(buffer[i], 0x5a5a5a5a, `quantize ${name} x ${count}: wrote outside out at ${i}`);
        assertSame(quantize(p, l), want, `quantize ${name} x ${count} (Float32Array input)`);
      });
    }
  }
});

test('quantize boundary values give the documented levels', () => {
  const cases: [number, number, number][] = [
    // [p, q, level]
    [0, 4, 0],
    [-0, 4, 0],
    [-0.3, 4, 0],
    [NaN, 4, 0],
    [-Infinity, 4, 0],
    [1e-45, 4, 0],
    [1 / 16, 4, 1],
    [Math.fround((1 / 16) * (1 - 2 ** -24)), 4, 0],
    [0.5, 1, 1],
    [Math.fround(0.5 * (1 - 2 ** -24)), 1, 0],
    [BELOW_ONE, 1, 1],
    [BELOW_ONE, 4, 15],
    [BELOW_ONE, 8, 255],
    [BELOW_ONE, 24, 2 ** 24 - 1],
    [BELOW_ONE, 32, 2 ** 32 - 256],
    [1, 4, 15],
    [1, 32, 2 ** 32 - 1],
    [1.5, 8, 255],
    [Infinity, 32, 2 ** 32 - 1],
    [0.75, 32, 0.75 * 2 ** 32],
  ];
  forEachIsa(() => {
    for (const [p, q, level] of cases) {
      const c = quantize(Float32Array.of(p), { n: 1, q });
      assert.is(c[0] >>> 0, level, `p=${p} q=${q}`);
    }
  });
});

test('pack, unpack and quantize round trips for every layout', () => {
  for (const name of LAYOUTS) {
    const l = parseLayout(name);
    const rng = new Rng(l.n * 100 + l.q);
    const codes = randomCodes(rng, 257, l);
    const levels = unpack(codes, l);
    assert.instance(levels, l.q <= 8 ? Uint8Array : Uint32Array, `${name}: level array type`);
    assert.is(levels.length, 257 * l.n);
    for (let c = 0; c < 257; c++) assert.equal(Array.from(levels.subarray(c * l.n, (c + 1) * l.n)), levelsOf(codes[c], l), `${name}: unpack code ${c}`);
    assertSame(pack(levels, l), codes, `${name}: pack(unpack(codes))`);
    assertSame(pack(Array.from(levels), name), codes, `${name}: pack(plain array)`);
    // The centre of each level's interval quantizes back to that level (float32 resolves the
    // levels of q <= 24 only: for q = 32 neighbouring levels share a float).
    if (l.q <= 24) {
      const centres = Float32Array.from(levels, (v) => (v + 0.5) / 2 ** l.q);
      forEachIsa(() => assertSame(quantize(centres, l), codes, `${name}: quantize(level centres)`));
    }
    // Uint32Array views of the same bits are accepted everywhere.
    const asU32 = new Uint32Array(codes.buffer);
    assertSame(unpack(asU32, l), levels, `${name}: unpack(Uint32Array)`);
  }
  // Dimension 0 is in the lowest bits.
  assert.is(pack([1, 2, 3, 4, 5, 6, 7, 8], '8x4')[0], 0x87654321 | 0);
  assert.is(pack([3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2], '16x2')[0], (2 << 30) | 3);
  assert.is(pack([2 ** 32 - 1], '1x32')[0], -1);
  assert.equal(Array.from(unpack(Int32Array.of(0x87654321 | 0), '8x4')), [1, 2, 3, 4, 5, 6, 7, 8]);
});

// ---------------------------------------------------------------------------------------------
// Distances

test('codeDistances vs brute force on every ISA (L1 and Hamming), every layout, tails and a threaded batch', () => {
  for (const name of LAYOUTS) {
    const l = parseLayout(name);
    for (const count of [1, 5, 8, 15, 16, 17, 33, 1000, 40_000]) {
      const rng = new Rng(count * 7 + l.bits + l.q);
      const a = randomCodes(rng, count, l);
      const b = randomCodes(rng, count, l);
      for (const metric of ['l1', 'hamming'] as const) {
        const want = Uint32Array.from({ length: count }, (_, k) => codeDistanceRef(a[k], b[k], l, metric));
        forEachIsa(() => {
          const buffer = new Uint32Array(count + 40).fill(0xdeadbeef);
          const out = buffer.subarray(13, 13 + count);
          assert.is(codeDistances(a, b, l, { metric, out }), out);
          assertSame(out, want, `${name} ${metric} x ${count}`);
          for (let i = 0; i < buffer.length; i++) if (i < 13 || i >= 13 + count) assert.is(buffer[i], 0xdeadbeef, `${name} ${metric}: wrote outside out`);
        });
        if (count <= 33) for (let k = 0; k < count; k++) assert.is(codeDistance(a[k], b[k], l, { metric }), want[k], `${name} ${metric}: codeDistance`);
      }
    }
    // The extremes: 0 against all-top codes is maxDistance.
    const zero = new Int32Array(3);
    const top = pack(new Array(3 * l.n).fill(2 ** l.q - 1), l);
    forEachIsa(() => {
      assertSame(codeDistances(zero, top, l), new Uint32Array(3).fill(maxDistance(l)), `${name}: max L1 distance`);
      assertSame(codeDistances(zero, top, l, { metric: 'hamming' }), new Uint32Array(3).fill(l.bits), `${name}: max Hamming distance`);
      assertSame(codeDistances(top, top, l), new Uint32Array(3), `${name}: distance to itself`);
    });
    assert.is(codeDistance(0, top[0], l), maxDistance(l));
    assert.is(codeDistance(0, top[0] >>> 0, l), maxDistance(l), 'a code given as uint32');
  }
});

// ---------------------------------------------------------------------------------------------
// Errors

function expectDclError(fn: () => unknown, code: string, pattern: RegExp, label: string): void {
  try {
    fn();
  } catch (error) {
    assert.instance(error, DclError, `${label}: not a DclError`);
    assert.is((error as DclError).code, code, `${label}: code (${(error as Error).message})`);
    assert.match((error as Error).message, pattern, `${label}: message`);
    return;
  }
  assert.unreachable(`${label}: expected a DclError ${code}`);
}

test('dimensionsInUse counts the dimensions whose level varies, against unpack, for every layout', () => {
  const rng = new Rng(77);
  for (const name of ['32x1', '16x2', '8x4', '4x8', '1x32', '3x5', '5x3']) {
    const l = parseLayout(name);
    for (const count of [0, 1, 2, 37]) {
      // Each dimension is constant (at a random level) or random, per trial.
      const constant = Array.from({ length: l.n }, () => rng.float() < 0.5);
      const fixed = Array.from({ length: l.n }, () => Math.floor(rng.float() * l.levels));
      const levels: number[] = [];
      for (let k = 0; k < count; k++) for (let i = 0; i < l.n; i++) levels.push(constant[i] ? fixed[i] : Math.floor(rng.float() * l.levels));
      const codes = pack(levels, l);
      const unpacked = unpack(codes, l);
      let expected = 0;
      for (let i = 0; i < l.n; i++) {
        const seen = new Set<number>();
        for (let k = 0; k < count; k++) seen.add(unpacked[k * l.n + i]);
        if (seen.size > 1) expected++;
      }
      assert.is(dimensionsInUse(codes, l), expected, `${name}, ${count} codes`);
      assert.is(dimensionsInUse(new Uint32Array(codes.buffer), name), expected, `${name} as Uint32Array`);
    }
  }
  assert.is(dimensionsInUse(Int32Array.of(0, 1 << 31), '32x1'), 1, 'the top bit');
  assert.is(dimensionsInUse(Int32Array.of(0, -1), '1x32'), 1, 'one 32-bit dimension');
  expectDclError(() => dimensionsInUse(Int32Array.of(256), '2x4'), 'E_ARG', /bits above 8 zero/, 'unused bits');
});

test('bad arguments give DclError E_ARG / E_SHAPE with "Expected ... for ... but received ..."', () => {
  expectDclError(() => quantize(new Float32Array(7), '8x4'), 'E_SHAPE', /multiple of n = 8 \(layout 8x4\) for p but received Float32Array of length 7/, 'p length');
  expectDclError(() => quantize({ data: new Float32Array(8), shape: [2, 4] }, '8x4'), 'E_SHAPE', /Expected shape \[N, 8\] \(layout 8x4\) for p but received shape \[2, 4\]/, 'p shape');
  expectDclError(() => quantize({ data: new Float32Array(8), shape: [8] }, '8x4'), 'E_SHAPE', /rank 2 for p/, 'p rank');
  expectDclError(() => quantize([0.5] as never, '1x4'), 'E_ARG', /Tensor or \{ data: Float32Array, shape \} for p/, 'p array');
  expectDclError(() => quantize(new Float32Array(8), '8x5'), 'E_ARG', /for layout but received "8x5"/, 'layout');
  expectDclError(() => quantize(new Float32Array(8), '8x4', { out: new Int32Array(2) }), 'E_ARG', /an Int32Array of length 1 for options\.out but received Int32Array of length 2/, 'out length');
  expectDclError(() => quantize(new Float32Array(8), '8x4', { outt: 1 } as never), 'E_ARG', /option 'outt'/, 'unknown option');
  expectDclError(() => pack([16], '1x4'), 'E_ARG', /integer levels from 0 to 15 \(layout 1x4\) for levels\[0\] but received 16/, 'level too large');
  expectDclError(() => pack([1.5], '1x4'), 'E_ARG', /for levels\[0\] but received 1\.5/, 'fractional level');
  expectDclError(() => pack([1, 2, 3], '2x4'), 'E_SHAPE', /multiple of n = 2/, 'levels length');
  expectDclError(() => pack(7 as never, '2x4'), 'E_ARG', /an array or typed array of levels for levels but received 7/, 'levels type');
  expectDclError(() => unpack(Int32Array.of(256), '2x4'), 'E_ARG', /codes of layout 2x4 \(bits above 8 zero\) for codes but received 0x100 at index 0/, 'unused bits');
  expectDclError(() => unpack([1] as never, '2x4'), 'E_ARG', /an Int32Array \(or Uint32Array\) of codes for codes but received \[1\]/, 'codes type');
  expectDclError(() => codeDistances(new Int32Array(3), new Int32Array(2), '8x4'), 'E_SHAPE', /Expected b to have as many codes as a \(3\) but received Int32Array of length 2/, 'lengths');
  expectDclError(() => codeDistances(new Int32Array(1), Int32Array.of(-1), '8x3'), 'E_ARG', /bits above 24 zero\) for b but received 0xffffffff/, 'b unused bits');
  expectDclError(() => codeDistances(new Int32Array(1), new Int32Array(1), '8x4', { metric: 'l2' as never }), 'E_ARG', /'l1' or 'hamming' for options\.metric but received "l2"/, 'metric');
  expectDclError(() => codeDistances(new Int32Array(1), new Int32Array(1), '8x4', { out: new Int32Array(1) as never }), 'E_ARG', /a Uint32Array of length 1 for options\.out/, 'out type');
  expectDclError(() => codeDistance(0.5, 0, '8x4'), 'E_ARG', /an integer code \(int32 or uint32\) for a but received 0\.5/, 'fractional code');
  expectDclError(() => codeDistance(0, 2 ** 32, '8x4'), 'E_ARG', /for b but received 4294967296/, 'code too large');
  expectDclError(() => codeDistance(0, 256, '2x4'), 'E_ARG', /a code of layout 2x4 \(bits above 8 zero\) for b but received 0x100/, 'single code unused bits');
  expectDclError(() => maxDistance('8x4', 'l3' as never), 'E_ARG', /for metric/, 'maxDistance metric');
});

test.run();
