// Every subcommand, in help order. A new command is one file plus one line here.
import { checkCommand } from './check.js';
import { psCommand } from './ps.js';
import { sharingCommand } from './sharing.js';
import type { CliCommand } from './types.js';

export const COMMANDS: readonly CliCommand[] = [checkCommand, psCommand, sharingCommand];
