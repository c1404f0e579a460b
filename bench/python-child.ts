// A long-lived Python child process driven line by line: one command on stdin, one JSON object
// back on stdout (bench/torch_conv.py and bench/torch_train.py speak this protocol), so that the
// PyTorch side of a comparison stays warm between alternating rounds.
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

/** Debian's python3, which python3-torch installs into (not a pyenv python). */
export const PYTHON = '/usr/bin/python3';
export const JEMALLOC = '/usr/lib/x86_64-linux-gnu/libjemalloc.so.2';
const here = path.dirname(fileURLToPath(import.meta.url));

/** A file of bench/, from dist/bench/*.js or from bench/*.ts. */
export function benchFile(name: string): string {
  for (const p of [path.resolve(here, '../../bench', name), path.resolve(here, name)]) if (fs.existsSync(p)) return p;
  return path.resolve(here, '../../bench', name);
}

/**
 * PyTorch's fastest configuration on this kind of machine (ANCHORS.md): one OpenBLAS thread,
 * its SkylakeX kernels, jemalloc when installed, plus the section's own DCL_BENCH_* variables.
 */
/**
 * OpenBLAS's kernel family for this CPU: SkylakeX (AVX-512) where the CPU has AVX-512F, else
 * Haswell (AVX2 + FMA). Forcing SkylakeX on a CPU without AVX-512 kills the process with an
 * illegal instruction, so it is never assumed.
 */
export function openblasCoretype(): string {
  let flags = '';
  try {
    flags = fs.readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return 'Haswell';
  }
  return /\bavx512f\b/.test(flags) ? 'SkylakeX' : 'Haswell';
}

export function torchEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    OPENBLAS_NUM_THREADS: '1',
    OPENBLAS_CORETYPE: openblasCoretype(),
    MALLOC_CONF: 'dirty_decay_ms:-1,muzzy_decay_ms:-1',
    ...extra,
  };
  delete env.LD_PRELOAD;
  if (fs.existsSync(JEMALLOC)) env.LD_PRELOAD = JEMALLOC;
  return env;
}

/** Why PyTorch cannot run the given bench scripts, or null. */
export function torchUnavailable(scripts: readonly string[]): string | null {
  if (!fs.existsSync(PYTHON)) return `${PYTHON} not found`;
  const r = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8', timeout: 60_000 });
  if (r.error) return `${PYTHON} could not run: ${r.error.message}`;
  if (r.status !== 0) {
    const last = (r.stderr || '').trim().split('\n').pop();
    return `${PYTHON} cannot import torch (${last}); apt-get install python3-torch libopenblas0-pthread libjemalloc2`;
  }
  for (const f of scripts) if (!fs.existsSync(benchFile(f))) return `${benchFile(f)} not found`;
  return null;
}

export class PythonChild {
  private child: ChildProcessWithoutNullStreams;
  private lines: string[] = [];
  private waiting: ((line: string | null) => void) | null = null;
  private closed = false;
  stderr = '';

  constructor(python: string, script: string, env: NodeJS.ProcessEnv) {
    this.child = spawn(python, [script], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    readline.createInterface({ input: this.child.stdout }).on('line', (line) => {
      if (this.waiting) {
        const w = this.waiting;
        this.waiting = null;
        w(line);
      } else this.lines.push(line);
    });
    this.child.stderr.on('data', (d) => (this.stderr = (this.stderr + d.toString()).slice(-4000)));
    this.child.on('close', () => {
      this.closed = true;
      if (this.waiting) this.waiting(null);
    });
  }

  async read(): Promise<Record<string, unknown>> {
    const line = this.lines.shift() ?? (this.closed ? null : await new Promise<string | null>((resolve) => (this.waiting = resolve)));
    if (line === null) throw new Error(`the PyTorch process ended: ${this.stderr.trim().split('\n').slice(-3).join(' | ')}`);
    const msg = JSON.parse(line) as Record<string, unknown>;
    if (msg.error) throw new Error(`PyTorch: ${msg.error}`);
    return msg;
  }

  async command(cmd: string): Promise<Record<string, unknown>> {
    this.child.stdin.write(cmd + '\n');
    return this.read();
  }

  async quit(): Promise<void> {
    if (this.closed) return;
    const done = new Promise<void>((resolve) => this.child.on('close', () => resolve()));
    this.child.stdin.write('quit\n');
    this.child.stdin.end();
    await done;
  }
}
