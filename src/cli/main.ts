/**
 * ckpt command line: parse arguments, call the API, render. Exit codes: 0 ok,
 * 1 a CkptError (one line "ckpt: message" on stderr), 2 usage error, 70 a bug
 * (unexpected exception). CKPT_DEBUG=1 adds the stack trace.
 */
import { CommanderError } from 'commander';
import { isCkptError } from '../common/errors.js';
import { expandConfig } from './config.js';
import { refuseExecCmd } from './criu-options.js';
import { buildProgram } from './program.js';

const EXIT_USAGE = 2;
const EXIT_SOFTWARE = 70;

function fail(message: string, code: number, e?: unknown): void {
  process.stderr.write(`ckpt: ${message.replace(/\s*\n\s*/g, ' ')}\n`);
  if (process.env.CKPT_DEBUG === '1' && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
  process.exitCode = code;
}

export async function main(argv: readonly string[]): Promise<void> {
  // With the tsc output, commands load after this, so their stacks name src/ lines
  // (bin/ckpt.js turns maps on before it loads the bundle).
  if (process.env.CKPT_DEBUG === '1') process.setSourceMapsEnabled(true);
  // `ckpt show DIR | head`: a reader that goes away is not an error.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
  try {
    // Bare `ckpt`: the help, on stdout, exit 0 (not commander's "(outputHelp)" error).
    if (argv.length === 0) {
      buildProgram().outputHelp();
      return;
    }
    const args = expandConfig(argv);
    refuseExecCmd(args);
    await buildProgram({ only: args[0] }).parseAsync(args, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      // help and --version "errors" are normal exits
      if (e.exitCode === 0) return;
      fail(e.message.replace(/^error: /, ''), EXIT_USAGE, e);
    } else if (isCkptError(e)) {
      fail(e.message, e.code === 'USAGE' ? EXIT_USAGE : 1, e);
    } else {
      const msg = e instanceof Error ? e.message : String(e);
      fail(`internal error: ${msg} (run with CKPT_DEBUG=1 for details)`, EXIT_SOFTWARE, e);
    }
  }
}

// Exit as soon as the command is done, with process.exitCode: a natural exit would also
// wait for child handles (the restore's blank process) and tear the heap down first (a
// few ms of a small dump). Writes to a file or a tty are synchronous; to a pipe whose
// reader is slower, what did not fit is queued, so wait for that first (`ckpt show
// --json | less` once lost all but the first 64 KiB).
function exitWhenFlushed(): void {
  const pending = [process.stdout, process.stderr].filter((s) => s.writableLength > 0);
  let left = pending.length;
  if (left === 0) process.exit();
  for (const s of pending) s.write('', () => --left === 0 && process.exit());
}
void main(process.argv.slice(2)).then(exitWhenFlushed);
