/** The commander program: every command and option (main.ts runs it; scripts/ generate the completion from it). */
import { Command } from 'commander';
import { COMMANDS } from './commands/index.js';
import { addCriuCommands, addNegations } from './criu-options.js';

/**
 * `only`: the command this run is for (argv[0]); when it names one of ours, only that
 * one is registered. commander checks each option against all those before it, and
 * dump and restore carry ~80 CRIU options each: building every command cost a CLI
 * run ~3 ms. Help, unknown and CRIU command names build the whole program.
 */
export function buildProgram(opts: { only?: string } = {}): Command {
  const program = new Command('ckpt')
    .description('checkpoint/restore of Linux process trees')
    .version('0.1.0')
    .exitOverride()
    .configureOutput({ outputError: () => undefined /* reported by fail() */ })
    .showSuggestionAfterError()
    .addHelpText('after', '\nCRIU\'s options are accepted too (docs/cli.md, man ckpt): each is done, a no-op, or refused saying why.');
  const one = COMMANDS.find((c) => c.name === opts.only);
  if (one) one.register(program);
  else {
    for (const c of COMMANDS) c.register(program);
    addCriuCommands(program);
  }
  // Subcommands inherit neither exitOverride nor configureOutput: set them on each.
  for (const sub of program.commands) {
    sub.exitOverride().configureOutput({ outputError: () => undefined });
    addNegations(sub);
  }
  return program;
}
