/** Resuming the memory tracking a parent round left, for a round dumped against it. */
import * as path from 'node:path';
import { CkptError } from '../common/errors.js';
import { ImageReader, parentRefFor, type ParentRef } from '../images/index.js';
import { MemoryTracking, TRACKING_IMAGE } from '../resources/memory/track.js';

/** The parent round's reference and tracking, for a round dumped against it (dump or pre-dump). */
export function resumeTracking(imagesDir: string, parent: string): { ref: ParentRef; tracking: MemoryTracking } {
  const abs = path.resolve(imagesDir, parent);
  // A round sent to a page server keeps only its metadata here: that is all this needs.
  const r = ImageReader.open(abs, { pagesElsewhere: true });
  try {
    if (!r.has(TRACKING_IMAGE.name)) {
      throw new CkptError('USAGE', `Cannot dump against ${parent}: it left no memory tracking (make it with pre-dump, or with dump --track-mem --leave-running)`);
    }
    const state = r.read(TRACKING_IMAGE);
    const ref = parentRefFor(imagesDir, abs);
    return { ref, tracking: MemoryTracking.resume(state, parent) };
  } finally {
    r.close();
  }
}

/**
 * Ends the memory tracking a round left armed (its holder is killed, so the kernel
 * unregisters the areas as the last copy of each userfaultfd closes): for a chain of
 * rounds that will not be continued, e.g. a failed migration. Nothing to do when the
 * round left none, or its holder is gone already.
 */
export function endTracking(roundDir: string): void {
  let state;
  const r = ImageReader.open(roundDir, { pagesElsewhere: true });
  try {
    if (!r.has(TRACKING_IMAGE.name)) return;
    state = r.read(TRACKING_IMAGE);
  } finally {
    r.close();
  }
  let t: MemoryTracking;
  try {
    t = MemoryTracking.resume(state, roundDir);
  } catch {
    return; // its holder exited (or is not ours any more): nothing is armed by it
  }
  t.release();
}
