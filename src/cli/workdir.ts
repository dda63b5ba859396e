/**
 * CRIU's work directory (-W, --work-dir): where a relative -o/--log-file and --pidfile
 * are, defaulting to the images directory, as in CRIU (which cd's there). Other
 * relative paths (-D itself, --inherit-fd paths) stay relative to where ckpt was started.
 */
import { isAbsolute, join } from 'node:path';

export interface WorkDirFlags {
  imagesDir: string;
  workDir?: string;
}

/** `file` as CRIU reads it: absolute as given, relative from the work directory. */
export function inWorkDir(f: WorkDirFlags, file: string): string {
  return isAbsolute(file) ? file : join(f.workDir ?? f.imagesDir, file);
}

/** Whether `file` (as inWorkDir gives it) is directly in the images directory. */
export function inImagesDir(f: WorkDirFlags, file: string): boolean {
  return join(file, '..') === join(f.imagesDir);
}
