// A long-lived Python child process driven line by line: one command on stdin, one JSON object
// back on stdout (bench/torch_conv.py and bench/torch_train.py speak this protocol), so that the
// PyTorch side of a comparison stays warm between alternating rounds.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import readline from 'node:readline';

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
