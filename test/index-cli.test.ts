// `dcl index build` and `dcl index search` end to end on generated PNG faces and a tiny model.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { BinIndex } from '../lib/bin-index.js';
import { main } from '../lib/cli.js';
import type { Output } from '../lib/cli.js';
import { COMMANDS } from '../lib/commands.js';
import { syntheticFaces } from '../lib/synthetic.js';

const test = suite('index-cli');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dcl-index-cli-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

async function run(...argv: string[]) {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const out: Output = { print: (l) => void stdout.push(l), progress: () => undefined, endProgress: () => undefined, note: (l) => void stderr.push(l) };
  const code = await main(argv, COMMANDS, out);
  return { code, stdout: stdout.join('\n'), stderr: stderr.join('\n') };
}

/** Synthetic faces as 8-bit PNG files, <dir>/<Person>/<Person>_NNNN.png (as test/cli.test.ts). */
async function writeFaces(dir: string, identities: number, perIdentity: number): Promise<string[]> {
  const faces = syntheticFaces({ identities, imagesPerIdentity: perIdentity, size: 64, seed: 11 });
  const files: string[] = [];
  for (let i = 0; i < faces.labels.length; i++) {
    const name = `Person_${String(faces.labels[i]).padStart(2, '0')}`;
    const img = faces.images.subarray(i * 4096, (i + 1) * 4096);
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of img) (lo = Math.min(lo, v)), (hi = Math.max(hi, v));
    const raw = Uint8Array.from(img, (v) => Math.round((255 * (v - lo)) / (hi - lo || 1)));
    const file = path.join(dir, name, `${name}_${String((i % perIdentity) + 1).padStart(4, '0')}.png`);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    await sharp(raw, { raw: { width: 64, height: 64, channels: 1 } }).png().toFile(file);
    files.push(file);
  }
  return files;
}

test('index build over a folder, then index search: each face finds itself at distance 0', async () => {
  const faces = path.join(tmp, 'faces');
  const files = await writeFaces(faces, 4, 3);
  const model = path.join(tmp, 'm.safetensors');
  const t = await run('train', '--data', faces, '--layout', '8x4', '--steps', '2', '--no-cache', '--out', model);
  assert.is(t.code, 0, t.stderr);

  const indexFile = path.join(tmp, 'faces.dclbins');
  const b = await run('index', 'build', '--model', model, '--out', indexFile, faces);
  assert.is(b.code, 0, b.stderr);
  assert.match(b.stdout, /indexed 12 faces of layout 8x4/);
  const index = await BinIndex.load(indexFile);
  assert.is(index.size, 12);
  const sidecar = JSON.parse(fs.readFileSync(`${indexFile}.files.json`, 'utf8'));
  assert.equal(sidecar.files, files.slice().sort());

  const s = await run('index', 'search', '--index', indexFile, '--model', model, '--k', '12', files[4], files[7]);
  assert.is(s.code, 0, s.stderr);
  const blocks = s.stdout.split(/\n(?=\S)/);
  assert.is(blocks.length, 2);
  for (const [i, block] of blocks.entries()) {
    const query = [files[4], files[7]][i];
    assert.ok(block.startsWith(query), block);
    const rows = block.split('\n').slice(1).map((l) => l.trim().split('\t'));
    assert.is(rows.length, 12);
    const distances = rows.map((r) => Number(r[1]));
    assert.equal(distances, distances.slice().sort((x, y) => x - y));
    assert.ok(rows.some((r) => r[1] === '0' && r[2] === query), `${query} finds itself`);
  }
  const few = await run('index', 'search', '--index', indexFile, '--model', model, '--max-bins', '1', files[0]);
  assert.is(few.code, 0, few.stderr);
  assert.match(few.stdout, /1 bins visited/);
});

test('index: usage errors exit 2, a bad index file exits 1 with E_FORMAT', async () => {
  assert.is((await run('index')).code, 2);
  assert.is((await run('index', 'frob', '--model', 'x')).code, 2);
  assert.is((await run('index', 'build', 'x.png')).code, 2); // no --model
  assert.is((await run('index', 'build', '--model', 'm', 'x.png')).code, 2); // no --out
  assert.is((await run('index', 'search', '--model', 'm', 'x.png')).code, 2); // no --index
  const help = await run('index', '--help');
  assert.is(help.code, 0);
  assert.match(help.stdout, /usage: dcl index/);
  const bad = path.join(tmp, 'bad.dclbins');
  fs.writeFileSync(bad, 'not an index at all, just some bytes here to be long enough for a header');
  const model = path.join(tmp, 'm.safetensors');
  const r = await run('index', 'search', '--index', bad, '--model', model, path.join(tmp, 'faces'));
  assert.is(r.code, 1);
  assert.match(r.stderr, /error E_FORMAT/);
});

test.run();
