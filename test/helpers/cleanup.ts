/** Per-file cleanup for end-to-end tests: registered steps run after the file's tests, newest first. */
import { after } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Cleanups {
  push(step: () => Promise<void> | void): void;
  /** A new temporary directory, removed afterwards. */
  tempDir(prefix: string): string;
}

export function useCleanups(): Cleanups {
  const steps: (() => Promise<void> | void)[] = [];
  after(async () => {
    for (const s of steps.reverse()) await s();
  });
  return {
    push: (step) => void steps.push(step),
    tempDir(prefix) {
      const d = mkdtempSync(join(tmpdir(), prefix));
      steps.push(() => rmSync(d, { recursive: true, force: true }));
      return d;
    },
  };
}
