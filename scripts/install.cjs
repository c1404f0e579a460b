#!/usr/bin/env node
// npm install hook. node-gyp-build's own fallback runs node-gyp, but this package builds with
// cmake-js, so the decision is made here: if a matching binary loads (a prebuilt one from
// prebuilds/<platform>-<arch>/ or an earlier build in build/Release), nothing is compiled;
// otherwise the addon is compiled from source with cmake-js.
// The load test runs in a child process so that a bad binary cannot crash npm itself.
'use strict';
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const forceSource = /^(1|true|yes)$/i.test(process.env.DCL_BUILD_FROM_SOURCE || '');

function loads() {
  const probe = `require(${JSON.stringify(require.resolve('node-gyp-build'))})(${JSON.stringify(root)}).capabilities()`;
  const result = spawnSync(process.execPath, ['-e', probe], { stdio: 'ignore' });
  return result.status === 0;
}

if (!forceSource && loads()) {
  console.log('dcl-native: using the prebuilt binary (no compiler needed)');
  process.exit(0);
}

console.log('dcl-native: no prebuilt binary for this platform; compiling from source with cmake-js');
const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const build = spawnSync(process.execPath, [cmakeJs, 'compile', '--directory', root], { stdio: 'inherit', cwd: root });
if (build.status !== 0) {
  console.error(
    'dcl-native: the source build failed. It needs cmake (>= 3.18) and a C++17 compiler (g++ or clang++).\n' +
      'Install them (Debian/Ubuntu: apt-get install cmake g++) and run `npm rebuild dcl-native`.',
  );
  process.exit(build.status || 1);
}
if (!loads()) {
  console.error('dcl-native: the addon was built but does not load; see the messages above.');
  process.exit(1);
}
console.log('dcl-native: built from source');
