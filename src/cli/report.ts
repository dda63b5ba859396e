/**
 * What dump and restore tell the user, by CRIU's verbosity levels: 0 nothing,
 * 1 errors and warnings, 2 (default) also a one-line summary, 3 also one line per
 * phase and per process, 4 also every event; from 3 on, every line starts with the
 * time since ckpt started, as CRIU's `(00.012345)`. Every line also goes to the
 * -o/--log-file, whatever the level, so a quiet run still leaves a record.
 */
import { closeSync, constants, openSync, writeSync } from 'node:fs';
import { InvalidArgumentError } from 'commander';
import { CkptError } from '../common/errors.js';

/** Not in node's fs.constants: the blank process (and so the restored one) must not inherit it. */
const O_CLOEXEC = 0o2000000;

export const DEFAULT_VERBOSITY = 2;

export const MAX_VERBOSITY = 4;

/**
 * CRIU's -v forms: `-v4`, `-v 4`, `--verbosity=4` set the level; a bare `-v` (commander
 * passes '' as its preset) raises it by one and `-vvv` (value 'vv') by three, from the
 * default or the level given before. Levels above 4 are 4.
 */
export function parseVerbosity(value: string, previous?: number): number {
  if (/^v*$/.test(value)) return Math.min(MAX_VERBOSITY, (previous ?? DEFAULT_VERBOSITY) + value.length + 1);
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError(`"${value}" is not a verbosity level (0-4, or -v, -vv…)`);
  return Math.min(MAX_VERBOSITY, Number(value));
}

export interface ReportOptions {
  verbosity?: number;
  logFile?: string;
}

/** Where ckpt's clock starts: the process start, as CRIU's log timestamps (performance.timeOrigin would load node:perf_hooks). */
const START = Date.now() - process.uptime() * 1000;

export class Reporter {
  readonly level: number;
  private readonly logFile: string | undefined;
  private fd: number | undefined;
  /** Everything logged, for reopen(). */
  private logged = '';

  constructor(opts: ReportOptions) {
    this.level = opts.verbosity ?? DEFAULT_VERBOSITY;
    this.logFile = opts.logFile;
    // Opened (and truncated, like CRIU) now: a log that cannot be written is an error
    // before any work is done. O_NOFOLLOW: a symlink planted at the name is refused,
    // never followed into another file (root's ckpt would truncate it).
    if (this.logFile) this.fd = openLog(this.logFile);
  }

  /**
   * Opens the log file again by its name and writes it whole: a dump that replaced the
   * images directory holding the log left the old file behind with the old set.
   */
  reopen(): void {
    if (this.fd === undefined || !this.logFile) return;
    closeSync(this.fd);
    this.fd = openLog(this.logFile);
    this.log(this.logged, { keep: false });
  }

  /** `(00.012345) ` from level 3 on, as CRIU stamps its lines. */
  private stamp(): string {
    if (this.level < 3) return '';
    const s = (Date.now() - START) / 1000;
    return `(${s.toFixed(6).padStart(9, '0')}) `;
  }

  /** A line on stderr when the level is at least `minLevel`, and in the log file always. */
  say(line: string, minLevel = 2): void {
    const text = `${this.stamp()}${line}\n`;
    if (this.level >= minLevel) process.stderr.write(text);
    this.log(text);
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

  private log(text: string, opts = { keep: true }): void {
    if (this.fd === undefined) return;
    if (opts.keep) this.logged += text;
    try {
      writeSync(this.fd, text);
    } catch (e) {
      throw new CkptError('IO', `Cannot write log file ${this.logFile}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
  }
}

function openLog(path: string): number {
  try {
    const { O_WRONLY, O_CREAT, O_TRUNC, O_APPEND, O_NOFOLLOW } = constants;
    return openSync(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0o600);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ELOOP' ? 'it is a symbolic link (ELOOP)' : code ?? String(e);
    throw new CkptError('USAGE', `Cannot write log file ${path}: ${why}`);
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
