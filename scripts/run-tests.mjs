// Runs the uvu suites in dist/test and ends with one plain "N passed, N failed" line.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
// uvu's package exports list neither bin.js nor package.json: find bin.js from its entry point (dist/index.js).
const uvuBin = path.join(path.dirname(require.resolve('uvu')), '..', 'bin.js');
const pattern = process.argv[2] ?? '\\.test\\.js$';
const child = spawn(process.execPath, [uvuBin, 'dist/test', pattern], { stdio: ['ignore', 'pipe', 'inherit'] });
let output = '';
child.stdout.on('data', (chunk) => {
  process.stdout.write(chunk);
  output += chunk.toString();
});
child.on('close', (code) => {
  const plain = output.replace(/\x1b\[[0-9;]*m/g, '');
  const total = Number(/Total:\s+(\d+)/.exec(plain)?.[1] ?? 0);
  const passed = Number(/Passed:\s+(\d+)/.exec(plain)?.[1] ?? 0);
  const skipped = Number(/Skipped:\s+(\d+)/.exec(plain)?.[1] ?? 0);
  // uvu's Total counts the tests that ran; skipped ones (test.skip) are not in it.
  const failed = code === 0 ? total - passed : Math.max(1, total - passed);
  console.log(`\n${passed} passed, ${failed} failed, ${skipped} skipped`);
  if (total === 0 && code === 0) {
    console.error('no test ran');
    process.exit(1);
  }
  process.exit(code ?? 1);
});
