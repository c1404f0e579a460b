// BinRanker: the position of a bin in the visiting order (ascending distance, ties by code as
// uint32) counted without enumerating, against enumerating and sorting the whole code space.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { codeDistance, parseLayout } from '../lib/codes.js';
import { BinRanker } from '../lib/search-eval.js';
import { Rng } from './reference.js';

const test = suite('search-eval');

test('BinRanker.rank equals the position in the sorted code space (small layouts)', () => {
  const rng = new Rng(3);
  for (const name of ['8x1', '4x2', '3x3', '2x5', '1x9', '5x2']) {
    const layout = parseLayout(name);
    const space = 2 ** (layout.n * layout.q);
    for (let t = 0; t < 4; t++) {
      const query = rng.int(0, space - 1);
      const order = Array.from({ length: space }, (_, c) => c).sort(
        (a, b) => codeDistance(query, a, layout) - codeDistance(query, b, layout) || a - b,
      );
      const ranker = new BinRanker(query, layout);
      order.forEach((code, position) => {
        if (ranker.rank(code) !== position) assert.unreachable(`${name} query ${query} code ${code}: ${ranker.rank(code)} != ${position}`);
      });
      assert.is(ranker.rank(query), 0);
    }
  }
});

test('BinRanker on 32-bit layouts: neighbours by distance and code order', () => {
  const r = new BinRanker(0, '32x1');
  assert.is(r.rank(0), 0);
  assert.is(r.rank(1), 1); // distance 1, smallest code
  assert.is(r.rank(2 ** 31 | 0), 32); // distance 1, largest code
  assert.is(r.rank(3), 33); // the first code at distance 2
  assert.is(r.rank(-1), 2 ** 32 - 1); // all ones: the farthest
  const l1 = new BinRanker(0x88888888 | 0, '8x4');
  assert.is(l1.rank(0x88888888 | 0), 0);
  assert.is(l1.distance(0x78888888), 1);
});

test.run();
