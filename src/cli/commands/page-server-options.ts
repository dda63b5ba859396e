import { basename, resolve } from 'node:path';
import type { Command } from 'commander';
import { CkptError } from '../../common/errors.js';
import { parsePort } from '../args.js';

export interface PageServerFlags {
  pageServer?: boolean;
  address?: string;
  port?: number;
  authToken?: string;
}

/** CRIU's --page-server --address --port, and ckpt's --auth-token, on dump and pre-dump. */
export function addPageServerOptions(cmd: Command): Command {
  return cmd
    .option('--page-server', 'send the images to `ckpt page-server` at --address:--port (page files only there; DIR keeps the rest)')
    .option('--address <addr>', 'the page server\'s IP address')
    .option('--port <port>', 'the page server\'s port', parsePort)
    .option('--auth-token <file>', 'the token file the page server was started with (0600, both sides)');
}

/** The dump's page server, or undefined; a half-given one is a usage error. The set is named after DIR (a server that keeps going writes it there). */
export function pageServerOf(f: PageServerFlags & { imagesDir: string }): { address: string; port: number; authToken: string; set: string } | undefined {
  if (!f.pageServer) {
    if (f.address !== undefined || f.port !== undefined) throw new CkptError('USAGE', 'Cannot use --address or --port without --page-server');
    return undefined;
  }
  const missing = [f.address === undefined && '--address', f.port === undefined && '--port', f.authToken === undefined && '--auth-token'].filter(Boolean);
  if (missing.length > 0) throw new CkptError('USAGE', `Cannot send images to a page server: ${missing.join(', ')} missing`);
  return { address: f.address!, port: f.port!, authToken: f.authToken!, set: basename(resolve(f.imagesDir)) };
}
