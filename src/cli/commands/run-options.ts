import { Help, Option, type Command } from 'commander';
import { collect } from '../args.js';
import { parseProgress } from '../progress.js';
import { parseVerbosity } from '../report.js';

/**
 * The options dump and restore share for what they say and run around the work:
 * -o, -v, --display-stats, --json, --progress, --action-script, --config.
 */
export function addRunOptions(cmd: Command, what: { command: 'dump' | 'restore'; scripts: string }): Command {
  // -v's preset ('' for a bare -v) is how it counts, not something to show in --help.
  const help = new Help();
  cmd.configureHelp({ optionDescription: (o) => (o.long === '--verbosity' ? o.description : help.optionDescription(o)) });
  return cmd
    .option('-o, --log-file <file>', 'also write the messages to FILE (relative to the work directory)')
    .addOption(new Option('-v, --verbosity [n]', 'verbosity 0-4 (0 silent, 2 summary, 3 phases and processes, with timestamps); -v, -vv… raise it').preset('').argParser(parseVerbosity))
    .option('--display-stats', `print CRIU's ${what.command} statistics on stdout`)
    .option('--json', `print the result as one JSON document on stdout${what.command === 'restore' ? ' (before waiting for the process)' : ''}`)
    .addOption(new Option('--progress <mode>', 'auto (a bar on a terminal), bar, json (lines on stderr) or none').argParser(parseProgress))
    .option('--action-script <file>', `run FILE at ${what.scripts} (CRTOOLS_SCRIPT_ACTION); repeatable`, collect)
    .option('--config <file>', 'read options from FILE first (CRIU\'s format)');
}
