#!/usr/bin/env node
// prebuildify drives node-gyp (`node-gyp rebuild --target=... --arch=... --release`). This
// package builds with cmake-js, so prebuildify is pointed here (--node-gyp) and the request is
// translated: a Node-API build does not depend on the target Node version, only the architecture
// and the build type matter.
'use strict';
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const args = process.argv.slice(2);
const arch = (args.find((a) => a.startsWith('--arch=')) || '').slice('--arch='.length);
const debug = args.includes('--debug');
const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const cmd = [cmakeJs, 'rebuild', '--directory', path.resolve(__dirname, '..')];
if (arch) cmd.push('--arch', arch);
if (debug) cmd.push('--debug');
const result = spawnSync(process.execPath, cmd, { stdio: 'inherit' });
process.exit(result.status === null ? 1 : result.status);
