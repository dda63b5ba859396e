/**
 * What dump and restore tell the user, by CRIU's verbosity levels: 0 nothing,
 * 1 errors and warnings, 2 (default) also a one-line summary, 3-4 details. Every
 * line also goes to the -o/--log-file, whatever the level, so a quiet run still
 * leaves a record.
 */
import { appendFileSync, writeFileSync } from 'node:fs';
import { InvalidArgumentError } from 'commander';
import { CkptError } from '../common/errors.js';

export const DEFAULT_VERBOSITY = 2;

export function parseVerbosity(value: string): number {
  if (!/^[0-4]$/.test(value)) throw new InvalidArgumentError(`"${value}" is not a verbosity level (0-4)`);
  return Number(value);
}

export interface ReportOptions {
  verbosity?: number;
  logFile?: string;
}

export class Reporter {
  readonly level: number;
  private readonly logFile: string | undefined;

  constructor(opts: ReportOptions) {
    this.level = opts.verbosity ?? DEFAULT_VERBOSITY;
    this.logFile = opts.logFile;
    // Truncate now (like CRIU): a log that cannot be written is an error before any work is done.
    if (this.logFile) this.log('', { truncate: true });
  }

  /** A line on stderr when the level is at least `minLevel`, and in the log file always. */
  say(line: string, minLevel = 2): void {
    if (this.level >= minLevel) process.stderr.write(`${line}\n`);
    this.log(`${line}\n`);
  }

  warn(message: string): void {
    this.say(`ckpt: warning: ${message}`, 1);
  }

  /** Records a failure in the log file; main.ts prints it on stderr. */
  error(e: unknown): void {
    this.log(`ckpt: ${e instanceof Error ? e.message : String(e)}\n`);
  }

  /** A failure after which a deferred signal ends ckpt (main.ts never sees it): said on stderr here. */
  fatal(e: unknown): void {
    const line = `ckpt: ${e instanceof Error ? e.message : String(e)}\n`;
    process.stderr.write(line);
    this.log(line);
  }

  private log(text: string, opts: { truncate?: boolean } = {}): void {
    if (!this.logFile) return;
    try {
      (opts.truncate ? writeFileSync : appendFileSync)(this.logFile, text, { mode: 0o600 });
    } catch (e) {
      throw new CkptError('USAGE', `Cannot write log file ${this.logFile}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
  }
}

/** 1234567 → "1.2 MiB" */
export function formatBytes(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} bytes` : `${v.toFixed(1)} ${units[u]}`;
}

export const ms = (t: number): string => `${Math.round(t)} ms`;
