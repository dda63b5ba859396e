/**
 * An undo stack: every change made to a target registers how to take it back, so
 * that any failure can unwind to "the target runs exactly as before". Undo steps
 * run in reverse order; a failing step does not stop the others.
 */
export interface UndoStep {
  label: string;
  run: () => void;
}

export class Undo {
  private steps: UndoStep[] = [];

  push(label: string, run: () => void): void {
    this.steps.push({ label, run });
  }

  /** Forget the steps (the changes are now meant to stay), e.g. after a successful restore. */
  clear(): void {
    this.steps = [];
  }

  get size(): number {
    return this.steps.length;
  }

  /** Runs every step, newest first; returns the errors of steps that failed. */
  runAll(): { label: string; error: unknown }[] {
    const failed: { label: string; error: unknown }[] = [];
    while (this.steps.length > 0) {
      const step = this.steps.pop()!;
      try {
        step.run();
      } catch (error) {
        failed.push({ label: step.label, error });
      }
    }
    return failed;
  }
}
