import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DclError } from '../lib/errors.js';
import { readFileChecked, writeFileAtomic, sha256Hex } from '../lib/files.js';
import { decodeSafetensors, encodeSafetensors } from '../lib/safetensors.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dcl-safetensors-'));

function sample() {
  const tensors = new Map<string, { dtype: 'F32' | 'I32'; shape: number[]; data: Float32Array | Int32Array }>([
    ['a.weight', { dtype: 'F32', shape: [2, 3], data: Float32Array.from([1, -2, 3.5, 4, 5, 6e-30]) }],
    ['b', { dtype: 'I32', shape: [3], data: Int32Array.from([7, -8, 2 ** 31 - 1]) }],
    ['c.bias', { dtype: 'F32', shape: [1], data: Float32Array.from([Math.PI]) }],
  ]);
  return tensors;
}

test('encode/decode round trip keeps every tensor, dtype, shape and metadata', () => {
  const { header, data } = encodeSafetensors(sample(), { 'dcl.layout': '8x4', note: 'é ✓' });
  const bytes = Buffer.concat([header, data]);
  assert.is((header.byteLength) % 8, 0, 'data starts 8-byte aligned');
  const back = decodeSafetensors(bytes);
  assert.equal(back.metadata, { 'dcl.layout': '8x4', note: 'é ✓' });
  for (const [name, t] of sample()) {
    const got = back.tensors.get(name)!;
    assert.is(got.dtype, t.dtype);
    assert.equal(got.shape, t.shape);
    assert.equal(Array.from(got.data), Array.from(t.data));
  }
});

test('the header follows the published layout (u64 length, JSON, data_offsets relative to the data)', () => {
  const { header, data } = encodeSafetensors(sample(), {});
  const n = Number(new DataView(header.buffer).getBigUint64(0, true));
  const json = JSON.parse(Buffer.from(header.subarray(8, 8 + n)).toString('utf8'));
  assert.equal(json['a.weight'].data_offsets, [0, 24]);
  assert.equal(json['b'].data_offsets, [24, 36]);
  assert.equal(json['c.bias'].data_offsets, [40, 44]);
  assert.is(data.byteLength, 44);
});

function expectFormatError(bytes: Uint8Array, pattern: RegExp) {
  try {
    decodeSafetensors(bytes, 'model.safetensors');
  } catch (e) {
    assert.instance(e, DclError);
    assert.is((e as DclError).code, 'E_FORMAT');
    assert.match((e as DclError).message, pattern);
    return;
  }
  assert.unreachable('expected an E_FORMAT error');
}

test('corrupt, truncated and foreign bytes give E_FORMAT, never a crash', () => {
  const { header, data } = encodeSafetensors(sample(), { k: 'v' });
  const good = Buffer.concat([header, data]);
  expectFormatError(good.subarray(0, 5), /fewer than the 8-byte/);
  expectFormatError(good.subarray(0, good.byteLength - 3), /truncated/);
  expectFormatError(Buffer.from('PK\u0003\u0004 this is a zip file, not a model at all'), /header length|not JSON/);
  const huge = Buffer.from(good);
  huge.writeBigUInt64LE(2n ** 62n, 0);
  expectFormatError(huge, /header length/);
  const notJson = Buffer.from(good);
  notJson[9] = 0x7b;
  notJson[10] = 0x7b;
  expectFormatError(notJson, /not JSON/);
  // A well-formed header that lies about sizes or types.
  const lie = (entry: unknown) => {
    const text = Buffer.from(JSON.stringify({ x: entry }));
    const h = Buffer.alloc(8);
    h.writeBigUInt64LE(BigInt(text.byteLength), 0);
    return Buffer.concat([h, text, Buffer.alloc(16)]);
  };
  expectFormatError(lie({ dtype: 'F16', shape: [2], data_offsets: [0, 4] }), /unsupported dtype/);
  expectFormatError(lie({ dtype: 'F32', shape: [3], data_offsets: [0, 8] }), /needs 12/);
  expectFormatError(lie({ dtype: 'F32', shape: [-1], data_offsets: [0, 4] }), /invalid shape/);
  expectFormatError(lie({ dtype: 'F32', shape: [2], data_offsets: [8, 0] }), /outside/);
  expectFormatError(lie({ dtype: 'F32', shape: [2], data_offsets: [0, 8, 9] }), /data_offsets/);
  const overlap = (() => {
    const text = Buffer.from(JSON.stringify({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }));
    const h = Buffer.alloc(8);
    h.writeBigUInt64LE(BigInt(text.byteLength), 0);
    return Buffer.concat([h, text, Buffer.alloc(16)]);
  })();
  expectFormatError(overlap, /overlap/);
});

test('writeFileAtomic replaces the file whole and leaves no temporary file; reads of missing files are E_IO', () => {
  const file = path.join(dir, 'm.bin');
  writeFileAtomic(file, [Uint8Array.from([1, 2, 3])]);
  writeFileAtomic(file, [Uint8Array.from([4, 5]), Uint8Array.from([6])]);
  assert.equal(Array.from(readFileChecked(file)), [4, 5, 6]);
  assert.equal(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp')), []);
  try {
    readFileChecked(path.join(dir, 'missing.bin'));
    assert.unreachable('expected E_IO');
  } catch (e) {
    assert.is((e as DclError).code, 'E_IO');
    assert.match((e as DclError).message, /ENOENT/);
  }
  try {
    writeFileAtomic(path.join(dir, 'no', 'such', 'folder', 'x.bin'), [Uint8Array.from([1])]);
    assert.unreachable('expected E_IO');
  } catch (e) {
    assert.is((e as DclError).code, 'E_IO');
  }
  assert.is(sha256Hex([Buffer.from('abc')]), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));
test.run();
