// The `dcl` command: dcl <command> [options]. Each command is a thin shell over the library's API:
// it parses options, shows progress on long work, prints results, and turns errors into a message
// and an exit code (0 ok, 1 a DclError or other failure, 2 a usage error, 130 interrupted).
import fs from 'node:fs';
import path from 'node:path';
import { DclError } from './errors.js';

// ---------------------------------------------------------------------------------------------
// Options

export type OptionType = 'string' | 'int' | 'number' | 'boolean';

export interface OptionSpec {
  type: OptionType;
  help: string;
  /** Shown in --help; applied by the command itself. */
  default?: string | number | boolean;
  /** Placeholder in --help (default: the type). */
  value?: string;
}

export interface CommandSpec {
  name: string;
  summary: string;
  /** Usage line after `dcl <name>` (positional arguments). */
  args?: string;
  options: Record<string, OptionSpec>;
  /** Extra paragraphs for --help. */
  details?: string;
  run(ctx: CommandContext): Promise<number | void>;
}

export interface CommandContext {
  options: Record<string, string | number | boolean | undefined>;
  positional: string[];
  out: Output;
  signal: AbortSignal;
}

/** A usage error: printed with the command's help hint, exit code 2. */
export class UsageError extends Error {}

export function parseOptions(args: string[], spec: Record<string, OptionSpec>): { options: CommandContext['options']; positional: string[]; help: boolean } {
  const options: CommandContext['options'] = {};
  const positional: string[] = [];
  let help = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === '--') {
      positional.push(...args.slice(i + 1));
      break;
    }
    if (arg === '--help' || arg === '-h') {
      help = true;
      continue;
    }
    if (!arg.startsWith('--')) {
      positional.push(arg);
      continue;
    }
    let name = arg.slice(2);
    let inline: string | undefined;
    const eq = name.indexOf('=');
    if (eq >= 0) {
      inline = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    let negated = false;
    if (!(name in spec) && name.startsWith('no-') && spec[name.slice(3)]?.type === 'boolean') {
      name = name.slice(3);
      negated = true;
    }
    const s = spec[name];
    if (!s) throw new UsageError(`unknown option --${name}`);
    if (s.type === 'boolean') {
      if (inline !== undefined) throw new UsageError(`--${name} takes no value`);
      options[name] = !negated;
      continue;
    }
    const raw = inline ?? args[++i];
    if (raw === undefined || (inline === undefined && raw.startsWith('--'))) throw new UsageError(`--${name} needs a value`);
    if (s.type === 'string') options[name] = raw;
    else {
      const v = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(v) || (s.type === 'int' && !Number.isInteger(v)))
        throw new UsageError(`--${name} needs ${s.type === 'int' ? 'an integer' : 'a number'}, not '${raw}'`);
      options[name] = v;
    }
  }
  return { options, positional, help };
}

export function commandHelp(c: CommandSpec): string {
  const rows = Object.entries(c.options).map(([name, s]) => {
    const flag = s.type === 'boolean' ? `--${name}` : `--${name} ${s.value ?? s.type.toUpperCase()}`;
    const def = s.default !== undefined ? ` (default ${s.default})` : '';
    return [flag, s.help + def];
  });
  rows.push(['--help', 'this help']);
  const width = Math.max(...rows.map((r) => r[0].length));
  return [
    `usage: dcl ${c.name}${Object.keys(c.options).length ? ' [options]' : ''}${c.args ? ` ${c.args}` : ''}`,
    '',
    c.summary,
    ...(c.details ? ['', c.details] : []),
    '',
    'options:',
    ...rows.map(([f, h]) => `  ${f.padEnd(width)}  ${h}`),
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// Output and progress

export interface Output {
  /** Results (stdout). */
  print(line: string): void;
  /** Progress and notes (stderr): a line rewritten in place on a terminal, else one line every few seconds. */
  progress(line: string): void;
  /** Ends the progress line (so the next output starts on a fresh line). */
  endProgress(): void;
  note(line: string): void;
}

export function consoleOutput(stdout: NodeJS.WriteStream = process.stdout, stderr: NodeJS.WriteStream = process.stderr): Output {
  const tty = stderr.isTTY === true;
  let open = false;
  let lastPrinted = 0;
  return {
    print(line) {
      if (open) this.endProgress();
      stdout.write(line + '\n');
    },
    progress(line) {
      if (tty) {
        const width = (stderr.columns ?? 100) - 1;
        stderr.write('\r' + line.slice(0, width).padEnd(Math.min(width, line.length + 2)));
        open = true;
      } else {
        const now = Date.now();
        if (now - lastPrinted >= 5000) {
          stderr.write(line + '\n');
          lastPrinted = now;
        }
      }
    },
    endProgress() {
      if (open) stderr.write('\n');
      open = false;
    },
    note(line) {
      if (open) this.endProgress();
      stderr.write(line + '\n');
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Formatting helpers shared by the commands

export const pct = (v: number, digits = 1) => `${(100 * v).toFixed(digits)}%`;

export function writeFileEnsuringDir(file: string, text: string): void {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  fs.writeFileSync(file, text);
}

// ---------------------------------------------------------------------------------------------
// Entry point

export async function main(argv: string[], commands: CommandSpec[], out: Output = consoleOutput()): Promise<number> {
  const byName = new Map(commands.map((c) => [c.name, c]));
  const overview = () =>
    [
      'usage: dcl <command> [options]    (dcl <command> --help for its options)',
      '',
      'commands:',
      ...commands.map((c) => `  ${c.name.padEnd(Math.max(...commands.map((x) => x.name.length)))}  ${c.summary}`),
    ].join('\n');
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    out.print(overview());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version') {
    out.print((await import('./model.js')).LIBRARY_VERSION);
    return 0;
  }
  const command = byName.get(name);
  if (!command) {
    out.note(`dcl: unknown command '${name}'\n\n${overview()}`);
    return 2;
  }
  const controller = new AbortController();
  const onSignal = () => {
    out.note(`\ndcl ${name}: interrupted, stopping...`);
    controller.abort();
  };
  process.once('SIGINT', onSignal);
  try {
    const parsed = parseOptions(rest, command.options);
    if (parsed.help) {
      out.print(commandHelp(command));
      return 0;
    }
    const code = await command.run({ options: parsed.options, positional: parsed.positional, out, signal: controller.signal });
    out.endProgress();
    return code ?? 0;
  } catch (error) {
    out.endProgress();
    if (error instanceof UsageError) {
      out.note(`dcl ${name}: ${error.message} (see dcl ${name} --help)`);
      return 2;
    }
    if (error instanceof DclError) {
      if (error.code === 'E_ABORTED' && controller.signal.aborted) return 130;
      out.note(`dcl ${name}: error ${error.code}: ${error.message}`);
      return 1;
    }
    out.note(`dcl ${name}: ${(error as Error)?.stack ?? String(error)}`);
    return 1;
  } finally {
    process.removeListener('SIGINT', onSignal);
  }
}
