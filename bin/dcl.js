#!/usr/bin/env node
// The `dcl` command-line tool; see `dcl --help`. The code is in lib/cli.ts and lib/commands.ts.
import { main } from '../dist/lib/cli.js';
import { COMMANDS } from '../dist/lib/commands.js';

process.exitCode = await main(process.argv.slice(2), COMMANDS);
