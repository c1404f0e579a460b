// Run as a child process by errors.test.ts (not a test file itself): calls every op with one
// tensor argument (or out) whose shape array has a hole, e.g. { data, shape: [, 3, 5, 5] }, and
// prints one JSON line per call. A check that iterates the shape with forEach / map / every skips
// the hole; if the length check then passes on the smaller data, the kernel reads or writes past
// its end, which is why this runs in a separate process.
import * as dcl from '../lib/index.js';

const product = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
const T = (shape: number[]) => dcl.Tensor.zeros(shape);
/** A tensor-like of `shape` with shape[0] missing, and data as long as the remaining dimensions say. */
function H(shape: number[]): dcl.Tensor {
  const s = new Array<number>(shape.length);
  for (let i = 1; i < shape.length; i++) s[i] = shape[i];
  return { data: new Float32Array(product(shape.slice(1))), shape: s } as unknown as dcl.Tensor;
}

const x4 = [2, 3, 5, 5];
const w4 = [4, 3, 3, 3];
const y4 = [2, 4, 3, 3];
const pool = { kernelSize: 2 };
const p4 = [2, 3, 4, 4];
const py = [2, 3, 2, 2];
const e = [4, 5];
const lx = [3, 5];
const lw = [4, 5];
const ly = [3, 4];

const cases: [string, () => unknown][] = [
  ['conv2d x', () => dcl.conv2d(H(x4), T(w4))],
  ['conv2d weight', () => dcl.conv2d(T(x4), H(w4))],
  ['conv2d bias', () => dcl.conv2d(T(x4), T(w4), H([4]))],
  ['conv2d out', () => dcl.conv2d(T(x4), T(w4), null, { out: H(y4) })],
  ['conv2d x and out', () => dcl.conv2d(H(x4), T(w4), null, { out: H(y4) })],
  ['conv2dBackwardInput dy', () => dcl.conv2dBackwardInput(H(y4), T(w4), x4)],
  ['conv2dBackwardInput weight', () => dcl.conv2dBackwardInput(T(y4), H(w4), x4)],
  ['conv2dBackwardInput out', () => dcl.conv2dBackwardInput(T(y4), T(w4), x4, { out: H(x4) })],
  ['conv2dBackwardWeight x', () => dcl.conv2dBackwardWeight(H(x4), T(y4), { kernelSize: 3 })],
  ['conv2dBackwardWeight dy', () => dcl.conv2dBackwardWeight(T(x4), H(y4), { kernelSize: 3 })],
  ['conv2dBackwardWeight out.weight', () => dcl.conv2dBackwardWeight(T(x4), T(y4), { kernelSize: 3, out: { weight: H(w4) } })],
  ['conv2dBackwardWeight out.bias', () => dcl.conv2dBackwardWeight(T(x4), T(y4), { kernelSize: 3, out: { bias: H([4]) } })],
  ['maxPool2d x', () => dcl.maxPool2d(H(p4), pool)],
  ['maxPool2d out.output', () => dcl.maxPool2d(T(p4), { ...pool, out: { output: H(py) } })],
  ['maxPool2dBackward dy', () => dcl.maxPool2dBackward(H(py), new Int32Array(product(py)), p4, pool)],
  ['maxPool2dBackward out', () => dcl.maxPool2dBackward(T(py), new Int32Array(product(py)), p4, { ...pool, out: H(p4) })],
  ['absTanh x', () => dcl.absTanh(H(e))],
  ['absTanh out', () => dcl.absTanh(T(e), { out: H(e) })],
  ['absTanhBackward dy', () => dcl.absTanhBackward(H(e), T(e), T(e))],
  ['absTanhBackward x', () => dcl.absTanhBackward(T(e), H(e), T(e))],
  ['absTanhBackward y', () => dcl.absTanhBackward(T(e), T(e), H(e))],
  ['absTanhBackward out', () => dcl.absTanhBackward(T(e), T(e), T(e), { out: H(e) })],
  ['sigmoid x', () => dcl.sigmoid(H(e))],
  ['sigmoid out', () => dcl.sigmoid(T(e), { out: H(e) })],
  ['sigmoidBackward dy', () => dcl.sigmoidBackward(H(e), T(e))],
  ['sigmoidBackward y', () => dcl.sigmoidBackward(T(e), H(e))],
  ['sigmoidBackward out', () => dcl.sigmoidBackward(T(e), T(e), { out: H(e) })],
  ['linear x', () => dcl.linear(H(lx), T(lw))],
  ['linear weight', () => dcl.linear(T(lx), H(lw))],
  ['linear bias', () => dcl.linear(T(lx), T(lw), H([4]))],
  ['linear out', () => dcl.linear(T(lx), T(lw), null, { out: H(ly) })],
  ['linear x and out', () => dcl.linear(H(lx), T(lw), null, { out: H(ly) })],
  ['linearBackwardInput dy', () => dcl.linearBackwardInput(H(ly), T(lw))],
  ['linearBackwardInput out', () => dcl.linearBackwardInput(T(ly), T(lw), { out: H(lx) })],
  ['linearBackwardWeight x', () => dcl.linearBackwardWeight(H(lx), T(ly))],
  ['linearBackwardWeight out.weight', () => dcl.linearBackwardWeight(T(lx), T(ly), { out: { weight: H(lw) } })],
  ['linearBackwardWeight out.bias', () => dcl.linearBackwardWeight(T(lx), T(ly), { out: { bias: H([4]) } })],
];

for (const [name, run] of cases) {
  let line: object;
  try {
    run();
    line = { name, threw: false };
  } catch (error) {
    const err = error as { code?: string; message?: string };
    line = { name, threw: true, isDclError: error instanceof dcl.DclError, code: err.code, message: err.message };
  }
  console.log(JSON.stringify(line));
}
