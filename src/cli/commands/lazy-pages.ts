import type { Command } from 'commander';
import type { CliCommand } from './types.js';

/**
 * `ckpt lazy-pages serve DIR` / `guard PID`: not for users. `restore --lazy-pages` starts
 * both processes itself with this command (docs/architecture.md, "Lazy restore").
 */
export const lazyPagesCommand: CliCommand = {
  name: 'lazy-pages',
  register(program: Command) {
    program
      .command('lazy-pages', { hidden: true })
      .description('the page server of a lazy restore (started by restore --lazy-pages)')
      .allowUnknownOption()
      .allowExcessArguments()
      .helpOption(false)
      .action(async (_opts: unknown, cmd: Command) => {
        const { runLazyPages } = await import('../../api/lazy-pages.js');
        process.exitCode = runLazyPages(cmd.args);
      });
  },
};
