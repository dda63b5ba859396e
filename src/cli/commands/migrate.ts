import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { CkptError, isCkptError } from '../../common/errors.js';
import { collect, parsePid, parsePort } from '../args.js';
import { actionScripts, type ActionScripts } from '../action-script.js';
import { printJson } from '../output.js';
import { formatBytes, ms, parseVerbosity, Reporter } from '../report.js';
import type { CliCommand } from './types.js';
import { zodForOneShot } from '../zod.js';

interface MigrateFlags {
  tree?: number;
  to?: { address: string; port: number };
  receive?: boolean;
  address?: string;
  port?: number;
  imagesDir?: string;
  authToken: string;
  maxRounds?: number;
  lazyPages?: boolean;
  postCopy?: boolean;
  resolveTimeout?: number;
  actionScript?: string[];
  verbosity?: number;
  json?: boolean;
}

/** HOST:PORT with HOST an IPv4 address or a bracketed IPv6 one. */
function parseTarget(value: string): { address: string; port: number } {
  const m = /^(\[[0-9a-fA-F:]+\]|[0-9.]+):(\d+)$/.exec(value);
  if (!m) throw new InvalidArgumentError(`"${value}" is not ADDRESS:PORT (an IP address; [v6]:PORT)`);
  return { address: m[1]!.replace(/^\[|\]$/g, ''), port: parsePort(m[2]!) };
}

function parseRounds(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 100) throw new InvalidArgumentError(`"${value}" is not a number of rounds (1-100)`);
  return Number(value);
}

function parseSeconds(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 86400) throw new InvalidArgumentError(`"${value}" is not a number of seconds (1-86400)`);
  return Number(value);
}

/** The migration failed after post-dump or pre-restore changed something: the scripts' migrate-failed point undoes it; its own failure is added to the error. */
function undoScripts(scripts: ActionScripts, e: unknown): void {
  try {
    scripts.run('migrate-failed');
  } catch (err) {
    if (e instanceof Error) e.message += ` (also: ${(err as Error).message})`;
  }
}

export const migrateCommand: CliCommand = {
  name: 'migrate',
  register(program: Command) {
    program
      .command('migrate')
      .description('move the process PID to the host running `ckpt migrate --receive` at --to (pre-copy rounds, a short final freeze, restore there)')
      .option('-t, --tree <pid>', 'process to migrate (source side)', parsePid)
      .option('--to <address:port>', 'the destination\'s `ckpt migrate --receive` (source side)', parseTarget)
      .option('--receive', 'be the destination: receive one migration and restore it')
      .option('--address <addr>', 'with --receive: IP address to listen on (default 0.0.0.0)')
      .option('--port <port>', 'with --receive: port to listen on (0: any, said on stderr)', parsePort)
      .option('-D, --images-dir <dir>', 'where the rounds go (--receive: required, new or empty; source: default a new directory in $TMPDIR, removed after)')
      .requiredOption('--auth-token <file>', 'token file both sides share (0600)')
      .option('--max-rounds <n>', 'source: pre-copy rounds at most before the final dump (default 8)', parseRounds)
      .option('--lazy-pages', 'with --receive: let the tree run before its pages are in (they come from -D on fault and in the background)')
      .option('--post-copy', 'source: leave the final dump\'s pages here and let the destination read them as it restores and runs (with --lazy-pages there: on fault and in the background); returns once it has every page')
      .option('--resolve-timeout <seconds>', 'when the connection breaks after the restore: how long the source keeps telling, and the destination waits to hear, whether the source\'s tree died (default 60)', parseSeconds)
      .option('--action-script <file>', 'run FILE at post-dump (source: the final set is on the destination, the tree frozen), pre-restore and post-restore (--receive), and migrate-failed (either side: the migration failed after post-dump or pre-restore ran); repeatable', collect)
      .option('-v, --verbosity [n]', 'verbosity 0-4', parseVerbosity)
      .option('--json', 'print the result as one JSON document on stdout')
      .action(async (f: MigrateFlags) => {
        const out = new Reporter({ verbosity: f.verbosity });
        await zodForOneShot();
        const api = { ...(await import('../../api/migrate.js')), ...(await import('../../api/migrate-receive.js')) };
        const resolveTimeoutMs = f.resolveTimeout === undefined ? undefined : f.resolveTimeout * 1000;
        try {
          if (f.receive) {
            if (f.tree !== undefined || f.to) throw new CkptError('USAGE', 'Cannot receive a migration: -t and --to are for the source side');
            if (!f.imagesDir || f.port === undefined) throw new CkptError('USAGE', 'Cannot receive a migration: -D and --port are required');
            const scripts = actionScripts(f.actionScript ?? [], { imagesDir: f.imagesDir, say: (l) => out.say(l, 3) });
            const { lazyPagesCommand } = await import('../../api/restore.js');
            let preRestored = false;
            let ranHere = false;
            let r: Awaited<ReturnType<typeof api.receiveMigration>>;
            try {
              r = api.receiveMigration({
                imagesDir: f.imagesDir, address: f.address, port: f.port, authToken: f.authToken, resolveTimeoutMs,
                lazyPages: f.lazyPages, lazyPagesCommand: f.lazyPages ? lazyPagesCommand(process.argv[1]!) : undefined,
                onListening: (at) => out.say(`migrate: listening on ${at.address}:${at.port}`, 0),
                log: (l) => out.say(l, 3),
                onEvent: (e) => {
                  if (e.phase === 'restoring') {
                    preRestored = true;
                    scripts.run('pre-restore');
                  } else {
                    ranHere = true;
                    scripts.run('post-restore', { initPid: e.pid });
                  }
                },
              });
            } catch (e) {
              // Nothing restored runs here (a tree held stopped in doubt keeps what pre-restore set up).
              if (preRestored && !ranHere && !isCkptError(e, 'TIMEOUT')) undoScripts(scripts, e);
              throw e;
            }
            out.say(`migrate: pid ${r.pid} runs here (restored in ${ms(r.restore.totalMs)})`);
            if (f.json) printJson({ pid: r.pid, sets: r.sets, restoreMs: r.restore.totalMs });
            return;
          }
          if (f.tree === undefined || !f.to) throw new CkptError('USAGE', 'Cannot migrate: -t PID and --to ADDRESS:PORT are required (or --receive)');
          const workDir = f.imagesDir ?? mkdtempSync(join(tmpdir(), 'ckpt-migrate-'));
          const scripts = actionScripts(f.actionScript ?? [], { imagesDir: workDir, say: (l) => out.say(l, 3) });
          let postDumped = false;
          const r = api.migrate(f.tree, {
            to: f.to, authToken: f.authToken, workDir, maxRounds: f.maxRounds, resolveTimeoutMs, postCopy: f.postCopy,
            onEvent: (e) => {
              if (e.phase === 'round') out.say(`round ${e.round}: ${e.pages} pages, frozen ${ms(e.frozenMs)}; at ${ms(e.ms)}`, 3);
              if (e.phase === 'written') {
                postDumped = true;
                scripts.run('post-dump', { initPid: f.tree });
              }
              // The tree runs here again: undo what post-dump did (moved its address away).
              if (e.phase === 'resumed' && postDumped) scripts.run('migrate-failed', { initPid: f.tree });
              if (e.phase === 'ready') out.say(`ready on the destination as pid ${e.pid}; at ${ms(e.ms)}`, 3);
              if (e.phase === 'restored') out.say(`restored on the destination as pid ${e.pid}; at ${ms(e.ms)}`, 3);
              if (e.phase === 'served') out.say(`post-copy: the destination has every page (${formatBytes(e.bytes)} read from here in ${e.sessions} session(s)); at ${ms(e.ms)}`, 3);
            },
          });
          const p = r.final.parts;
          out.say(`migrated pid ${r.pid} in ${ms(r.totalMs)}: ${r.rounds.length} pre-copy round(s), final ${r.final.pages} pages, frozen ${ms(r.final.freezeMs)} until it ran there (dump ${ms(p.collectMs)} + pages ${ms(p.memoryMs)}, post-dump ${ms(p.scriptMs)}, restore there ${ms(p.restoreMs)}, kill here ${ms(p.killMs)}, let go there ${p.runMs === undefined ? '?' : ms(p.runMs)})`);
          if (f.json) printJson(r);
        } catch (e) {
          out.error(e);
          throw e;
        }
      });
  },
};
