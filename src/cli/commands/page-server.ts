import type { Command } from 'commander';
import { CkptError } from '../../common/errors.js';
import { parsePort } from '../args.js';
import { printJson } from '../output.js';
import { formatBytes, parseVerbosity, Reporter } from '../report.js';
import type { CliCommand } from './types.js';
import { zodForOneShot } from '../zod.js';

interface PageServerFlags {
  imagesDir: string;
  address?: string;
  port: number;
  authToken: string;
  keepGoing?: boolean;
  lazyPages?: boolean;
  verbosity?: number;
  json?: boolean;
}

export const pageServerCommand: CliCommand = {
  name: 'page-server',
  register(program: Command) {
    program
      .command('page-server')
      .description('receive the images a dump or pre-dump sends with --page-server, complete, into DIR (restore from DIR)')
      .requiredOption('-D, --images-dir <dir>', 'directory for the images (created 0700 when a dump begins; must be new or empty)')
      .option('--address <addr>', 'IP address to listen on (default 0.0.0.0)')
      .requiredOption('--port <port>', 'port to listen on (0: any free port, said on stderr)', parsePort)
      .requiredOption('--auth-token <file>', 'token file the dumping side shares (0600; e.g. head -c 32 /dev/urandom > FILE)')
      .option('--keep-going', 'serve dump after dump, each into DIR/NAME, NAME being the last part of the dump\'s own -D (default: end after one dump, into DIR, as CRIU\'s page server)')
      .option('--lazy-pages', 'serve the set in DIR instead (a dump\'s, complete) to `ckpt restore --lazy-pages --page-server`, until it has every page')
      .option('-v, --verbosity [n]', 'verbosity 0-4', parseVerbosity)
      .option('--json', 'print what was received as one JSON document on stdout')
      .action(async (f: PageServerFlags) => {
        const out = new Reporter({ verbosity: f.verbosity });
        await zodForOneShot();
        const { pageServer, servePages } = await import('../../api/page-server.js');
        // Always said: a caller that asked for port 0 needs it, and scripts wait for this line.
        const onListening = (at: { address: string; port: number }) => out.say(`page server listening on ${at.address}:${at.port}`, 0);
        if (f.lazyPages) {
          if (f.keepGoing) throw new CkptError('USAGE', 'Cannot use --keep-going with --lazy-pages: a lazy page server serves one set');
          try {
            const r = servePages({ imagesDir: f.imagesDir, address: f.address, port: f.port, authToken: f.authToken, onListening, log: (l) => out.say(l, 3) });
            out.say(`every page served (${r.sessions} sessions)`);
            if (f.json) printJson(r);
          } catch (e) {
            out.error(e);
            throw e;
          }
          return;
        }
        try {
          const r = pageServer({
            imagesDir: f.imagesDir, address: f.address, port: f.port, authToken: f.authToken, keepGoing: f.keepGoing,
            onListening,
            log: (l) => out.say(l, 3),
          });
          for (const s of r.sets) out.say(`received ${s.files} files (${formatBytes(s.bytes)}) into ${s.dir}`);
          if (f.json) printJson(r);
        } catch (e) {
          out.error(e);
          throw e;
        }
      });
  },
};
