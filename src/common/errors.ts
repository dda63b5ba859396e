/**
 * Errors that reach a user. Every error has a stable `code` (for scripts and tests)
 * and a message that says "Cannot X: reason". The CLI prints the message on one line.
 */
export type ErrorCode =
  | 'SYSCALL' // a system call failed (see SysError)
  | 'NO_PROCESS' // the target PID does not exist or exited
  | 'KERNEL_THREAD' // the target is a kernel thread, which cannot be checkpointed
  | 'UNSUPPORTED' // the target uses something ckpt cannot save yet
  | 'PERMISSION' // we lack a privilege the operation needs
  | 'BAD_IMAGE' // an image is missing, truncated, corrupted, or of another format
  | 'PID_TAKEN' // a PID needed at restore is in use
  | 'ADDRESS_IN_USE' // a socket address needed at restore is taken
  | 'FILE_CHANGED' // a file the image refers to differs from the one seen at dump
  | 'TIMEOUT'
  | 'IO' // reading or writing a file of ours failed (disk full, I/O error, read-only fs)
  | 'USAGE' // bad command-line or API input
  | 'CHECK_FAILED' // restore --check: a restored process differs from its images
  | 'INTERRUPTED' // a signal (SIGINT, SIGTERM, SIGHUP, SIGPIPE) came during a dump or restore, which was rolled back
  | 'NETWORK' // a page server connection failed, was refused, timed out or carried a frame that does not check
  | 'ACTION_SCRIPT' // an --action-script failed (non-zero exit), which fails the dump or restore
  | 'INTERNAL';

export class CkptError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CkptError';
    this.code = code;
  }
}

export function isCkptError(e: unknown, code?: ErrorCode): e is CkptError {
  return e instanceof CkptError && (code === undefined || e.code === code);
}
