/**
 * ckpt command line: parse arguments, call the API, render. Exit codes: 0 ok,
 * 1 a CkptError (one line "ckpt: message" on stderr), 2 usage error, 70 a bug
 * (unexpected exception). CKPT_DEBUG=1 adds the stack trace.
 */
import { Command, CommanderError } from 'commander';
import { isCkptError } from '../common/errors.js';
import { COMMANDS } from './commands/index.js';

const EXIT_USAGE = 2;
const EXIT_SOFTWARE = 70;

function fail(message: string, code: number, e?: unknown): void {
  process.stderr.write(`ckpt: ${message.replace(/\s*\n\s*/g, ' ')}\n`);
  if (process.env.CKPT_DEBUG === '1' && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
  process.exitCode = code;
}

export function buildProgram(): Command {
  const program = new Command('ckpt')
    .description('checkpoint/restore of Linux process trees')
    .version('0.1.0')
    .exitOverride()
    .configureOutput({ outputError: () => undefined /* reported by fail() */ })
    .showSuggestionAfterError();
  for (const c of COMMANDS) c.register(program);
  // Subcommands inherit neither exitOverride nor configureOutput: set them on each.
  for (const sub of program.commands) sub.exitOverride().configureOutput({ outputError: () => undefined });
  return program;
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
    await buildProgram().parseAsync([...argv], { from: 'user' });
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
