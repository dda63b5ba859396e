/**
 * Progress of the page data of a long dump or restore. `--progress auto` (the default):
 * a bar with rate and ETA on a terminal (stderr), from 256 MiB on, at verbosity 2 and
 * up; `bar`: the bar whatever the size; `json`: one JSON line per step on stderr, for
 * programs (at most ten a second, and the last one); `none`: nothing. Dump and restore
 * run synchronously, so the bar is redrawn from the progress callback itself
 * (cli-progress's synchronous updates), not from a timer.
 */
import type { SingleBar } from 'cli-progress';
import { InvalidArgumentError } from 'commander';

const MIN_TOTAL = 256 * 1024 * 1024;
const MiB = 1024 * 1024;
const JSON_EVERY_MS = 100;

export const PROGRESS_MODES = ['auto', 'bar', 'json', 'none'] as const;
export type ProgressMode = (typeof PROGRESS_MODES)[number];

export function parseProgress(value: string): ProgressMode {
  const mode = PROGRESS_MODES.find((m) => m === value);
  if (!mode) throw new InvalidArgumentError(`"${value}" is not one of ${PROGRESS_MODES.join(', ')}`);
  return mode;
}

export interface Progress {
  onProgress?: (p: { bytes: number; total: number }) => void;
  stop(): void;
}

export interface ProgressOptions {
  mode?: ProgressMode;
  /** 'dump' or 'restore': the bar's label and the JSON lines' "progress" field. */
  what: 'dump' | 'restore';
  verbosity: number;
}

export async function progressOf(opts: ProgressOptions): Promise<Progress> {
  const mode = opts.mode ?? 'auto';
  if (mode === 'json') return jsonProgress(opts.what);
  if (mode === 'none' || (mode === 'auto' && (opts.verbosity < 2 || !process.stderr.isTTY))) return { stop() {} };
  return barProgress({ what: opts.what, minTotal: mode === 'bar' ? 0 : MIN_TOTAL });
}

function jsonProgress(what: string): Progress {
  const t0 = performance.now();
  let last = 0;
  let seen: { bytes: number; total: number } | undefined;
  const line = (p: { bytes: number; total: number }) => {
    const ms = Math.round(performance.now() - t0);
    process.stderr.write(`${JSON.stringify({ progress: what, bytes: p.bytes, total: p.total, ms })}\n`);
  };
  return {
    onProgress(p) {
      seen = p;
      const now = performance.now();
      if (now - last < JSON_EVERY_MS) return;
      last = now;
      line(p);
    },
    stop() {
      // The last state as it is: a restore ends with bytes = total, a dump's total is an estimate.
      if (seen) line(seen);
      seen = undefined;
    },
  };
}

async function barProgress(opts: { what: string; minTotal: number }): Promise<Progress> {
  const { default: progress } = await import('cli-progress');
  const t0 = performance.now();
  let bar: SingleBar | undefined;
  return {
    onProgress({ bytes, total }) {
      if (!bar) {
        if (total < opts.minTotal) return;
        bar = new progress.SingleBar(
          {
            format: `${opts.what === 'dump' ? 'dumping' : 'restoring'} |{bar}| {percentage}% {value}/{total} MiB, {rate} MiB/s, ETA {eta_formatted}`,
            stream: process.stderr, synchronousUpdate: true, fps: 10, hideCursor: true, etaBuffer: 20,
          },
          progress.Presets.shades_classic,
        );
        bar.start(Math.ceil(total / MiB), 0, { rate: '0' });
      }
      const s = (performance.now() - t0) / 1000;
      bar.setTotal(Math.ceil(total / MiB));
      bar.update(Math.floor(bytes / MiB), { rate: s > 0 ? (bytes / MiB / s).toFixed(0) : '0' });
    },
    stop() {
      if (!bar) return;
      bar.update(bar.getTotal());
      bar.stop();
    },
  };
}
