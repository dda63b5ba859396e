/** The shape of a feature probe of `ckpt check`. */
import type { ProbeContext } from './context.js';

export interface ProbeResult {
  /** Stable probe name, as given to `ckpt check --feature NAME`. */
  name: string;
  ok: boolean;
  /** What was found (or why the probe failed), one line. */
  detail: string;
  /** The ckpt feature that is lost when this probe fails. */
  disables: string;
  /** ckpt cannot checkpoint/restore at all without it. */
  required: boolean;
}

export interface Probe {
  name: string;
  required: boolean;
  disables: string;
  /** Returns the detail text on success; throws (any error) on failure, its message becomes the detail. */
  run(ctx: ProbeContext): string;
}
