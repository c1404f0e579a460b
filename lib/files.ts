// Files that users keep (models, indexes, checkpoints) are written atomically: to a temporary file
// in the same folder, flushed to disk, then renamed over the target, so a crash or a full disk
// leaves either the old file or the new one, never a torn one. Reads turn OS errors into DclError.
import { randomBytes, createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { DclError } from './errors.js';

function ioError(action: string, file: string, error: unknown): DclError {
  const e = error as NodeJS.ErrnoException;
  const message = e?.message ?? String(error);
  const code = e?.code && !message.includes(e.code) ? `${e.code} ` : '';
  return new DclError('E_IO', `Could not ${action} ${file}: ${code}${message}`, {
    cause: error,
  });
}

/** Writes `chunks` to `file` atomically (temporary file + fsync + rename + fsync of the folder). */
export function writeFileAtomic(file: string, chunks: readonly Uint8Array[]): void {
  const target = path.resolve(file);
  const dir = path.dirname(target);
  const temp = path.join(dir, `.${path.basename(target)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  let fd: number | undefined;
  try {
    fd = fs.openSync(temp, 'wx', 0o644);
    for (const chunk of chunks) {
      let written = 0;
      while (written < chunk.byteLength) written += fs.writeSync(fd, chunk, written, chunk.byteLength - written);
    }
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(temp, target);
  } catch (error) {
    if (fd !== undefined) {
      try {
        fs.closeSync(fd);
      } catch {
        // already failing: the first error is the one to report
      }
    }
    try {
      fs.unlinkSync(temp);
    } catch {
      // the temporary file may not exist
    }
    throw ioError('write', target, error);
  }
  // Make the rename itself durable. Some file systems refuse fsync on a folder: not an error.
  try {
    const dfd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(dfd);
    } finally {
      fs.closeSync(dfd);
    }
  } catch {
    // best effort
  }
}

export function readFileChecked(file: string): Buffer {
  if (typeof file !== 'string' || file.length === 0)
    throw new DclError('E_ARG', `Expected a file path for path but received ${file === '' ? 'an empty string' : typeof file}`);
  try {
    return fs.readFileSync(file);
  } catch (error) {
    throw ioError('read', file, error);
  }
}

export function sha256Hex(chunks: readonly Uint8Array[]): string {
  const hash = createHash('sha256');
  for (const c of chunks) hash.update(c);
  return hash.digest('hex');
}
