// Every subcommand, in help order. A new command is one file plus one line here.
import { checkCommand } from './check.js';
import { dumpCommand } from './dump.js';
import { lazyPagesCommand } from './lazy-pages.js';
import { migrateCommand } from './migrate.js';
import { pageServerCommand } from './page-server.js';
import { preDumpCommand } from './predump.js';
import { psCommand } from './ps.js';
import { restoreCommand } from './restore.js';
import { sharingCommand } from './sharing.js';
import { showCommand } from './show.js';
import type { CliCommand } from './types.js';

export const COMMANDS: readonly CliCommand[] = [dumpCommand, preDumpCommand, restoreCommand, showCommand, checkCommand, psCommand, sharingCommand, pageServerCommand, migrateCommand, lazyPagesCommand];
