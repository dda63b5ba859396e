/**
 * Signals that would end ckpt in the middle of a dump or restore (SIGHUP, SIGINT,
 * SIGPIPE, SIGTERM) are deferred while one runs, and turned into a clean rollback.
 *
 * `deferSignals` installs a native handler that only records the signal (sys/
 * signal-flag.ts) in place of whatever disposition each signal had (Node's own
 * handler, libuv's when the program has listeners, or the default; an ignored signal
 * is left ignored), runs the operation, and puts every disposition back byte for
 * byte. The operation polls `checkInterrupted()` at safe points — between phases, per
 * process, between page-copy units, never inside an injected call — which throws
 * CkptError('INTERRUPTED'), so the normal error path (undo stack, ImageWriter.abort,
 * killing what restore built) rolls back. Once the old dispositions are back, every
 * signal that came is sent again to ourselves: with the default disposition (the CLI)
 * we die of it as a shell expects; with listeners they run, and the caller gets the
 * INTERRUPTED error (or the result, if the signal came after the point of no return).
 */
import { CkptError } from '../common/errors.js';
import { getpid, kill, SIG, signalFlag } from '../sys/index.js';

const DEFERRED = [SIG.SIGHUP, SIG.SIGINT, SIG.SIGPIPE, SIG.SIGTERM];
const NAMES: Record<number, string> = { [SIG.SIGHUP]: 'SIGHUP', [SIG.SIGINT]: 'SIGINT', [SIG.SIGPIPE]: 'SIGPIPE', [SIG.SIGTERM]: 'SIGTERM' };

/** What the running operation is, for the error message ("dump process 42"); undefined when none runs. */
let active: string | undefined;

export function signalName(sig: number): string {
  return NAMES[sig] ?? `signal ${sig}`;
}

/**
 * Throws CkptError('INTERRUPTED') if a deferred signal came since the operation
 * started. Call it only where throwing is safe: where the caller's error path
 * already undoes everything done so far (not between an injected call and its undo).
 */
export function checkInterrupted(): void {
  if (active === undefined) return;
  const sig = signalFlag.lastCaught();
  if (sig !== 0) throw new CkptError('INTERRUPTED', `Cannot ${active}: interrupted by ${signalName(sig)}`);
}

export interface DeferOptions {
  /** The operation, for the error message: "dump process 42". */
  what: string;
  /**
   * Called when a signal came, once the operation has rolled back (with its error) or
   * finished, just before the signal is delivered again (which may end the process):
   * the last chance to put a terminal right (a progress bar's hidden cursor).
   */
  onSignal?: (error?: unknown) => void;
}

/** Runs `fn` with the deferred signals caught into a flag (see the file comment). Nested calls share the outer guard. */
export function deferSignals<T>(opts: DeferOptions, fn: () => T): T {
  if (active !== undefined) return fn();
  const what = opts.what;
  const saved = new Map<number, signalFlag.SavedAction>();
  let outcome: { ok: true; value: T } | { ok: false; error: unknown };
  signalFlag.clearCaught();
  active = what;
  try {
    for (const sig of DEFERRED) {
      if (!signalFlag.isIgnored(signalFlag.getAction(sig))) saved.set(sig, signalFlag.catchIntoFlag(sig));
    }
    outcome = { ok: true, value: fn() };
  } catch (error) {
    outcome = { ok: false, error };
  } finally {
    for (const [sig, action] of saved) signalFlag.setAction(sig, action);
    active = undefined;
  }
  const caught = signalFlag.caughtSignals();
  signalFlag.clearCaught();
  if (caught.length > 0) opts.onSignal?.(outcome.ok ? undefined : outcome.error);
  // The deferred signals, now under the old dispositions: the default one ends us here.
  for (const sig of caught) kill(getpid(), sig);
  if (!outcome.ok) throw outcome.error;
  return outcome.value;
}
