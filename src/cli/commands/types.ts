import type { Command } from 'commander';

/**
 * One subcommand, one file: `register` adds it to the program. The action sets
 * process.exitCode for non-error outcomes (e.g. check finding a missing feature)
 * and throws for errors; main.ts turns errors into one line on stderr.
 */
export interface CliCommand {
  name: string;
  register(program: Command): void;
}
