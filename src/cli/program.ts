/** The commander program: every command and option (main.ts runs it; scripts/ generate the completion from it). */
import { Command } from 'commander';
import { COMMANDS } from './commands/index.js';
import { addCriuCommands, addNegations } from './criu-options.js';

export function buildProgram(): Command {
  const program = new Command('ckpt')
    .description('checkpoint/restore of Linux process trees')
    .version('0.1.0')
    .exitOverride()
    .configureOutput({ outputError: () => undefined /* reported by fail() */ })
    .showSuggestionAfterError()
    .addHelpText('after', '\nCRIU\'s options are accepted too (docs/cli.md, man ckpt): each is done, a no-op, or refused saying why.');
  for (const c of COMMANDS) c.register(program);
  addCriuCommands(program);
  // Subcommands inherit neither exitOverride nor configureOutput: set them on each.
  for (const sub of program.commands) {
    sub.exitOverride().configureOutput({ outputError: () => undefined });
    addNegations(sub);
  }
  return program;
}
