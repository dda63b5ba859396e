/**
 * A progress bar for long dumps, on a terminal only. The dump runs synchronously, so
 * the bar is redrawn from the progress callback itself (cli-progress's synchronous
 * updates), not from a timer.
 */
import type { SingleBar } from 'cli-progress';

const MIN_TOTAL = 256 * 1024 * 1024;
const MiB = 1024 * 1024;

export interface DumpProgress {
  onProgress?: (p: { bytes: number; total: number }) => void;
  stop(): void;
}

export async function dumpProgress(opts: { enabled: boolean }): Promise<DumpProgress> {
  if (!opts.enabled || !process.stderr.isTTY) return { stop() {} };
  const { default: progress } = await import('cli-progress');
  let bar: SingleBar | undefined;
  return {
    onProgress({ bytes, total }) {
      if (!bar) {
        if (total < MIN_TOTAL) return;
        bar = new progress.SingleBar(
          { format: 'dumping |{bar}| {percentage}% {value}/{total} MiB', stream: process.stderr, synchronousUpdate: true, fps: 10, hideCursor: true },
          progress.Presets.shades_classic,
        );
        bar.start(Math.ceil(total / MiB), 0);
      }
      bar.setTotal(Math.ceil(total / MiB));
      bar.update(Math.floor(bytes / MiB));
    },
    stop() {
      if (!bar) return;
      bar.update(bar.getTotal());
      bar.stop();
    },
  };
}
