/**
 * `ckpt migrate --receive`: the destination of a migration (migrate.ts). Receives the
 * rounds into DIR/1, DIR/2…, DIR/final, restores DIR/final when asked, holds the tree
 * built and frozen until the source says its own is dead (migrate-commit.ts), then lets
 * it run.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CkptError } from '../common/errors.js';
import { readToken, receiveSets, type ReceivedSet } from '../images/index.js';
import { restore, type RestoreOptions, type RestoreResult } from '../restore/restore.js';
import { acceptAuthenticated, listenOn, SESSION_TIMEOUT_MS } from './page-server.js';
import { awaitGo, RESOLVE_TIMEOUT_MS, RestoreRequest } from './migrate-commit.js';

export interface ReceiveOptions {
  /** Where the rounds go (DIR/1, DIR/2…, DIR/final): new or empty. */
  imagesDir: string;
  address?: string;
  port: number;
  authToken: string;
  /** Restore lazily (RestoreOptions.lazyPages): the tree runs before its pages are in; they come from DIR. */
  lazyPages?: boolean;
  /** As RestoreOptions.lazyPagesCommand. */
  lazyPagesCommand?: readonly string[];
  /** How long to wait for the source's word when the connection broke after the restore (default 60 s); then the tree is left stopped. */
  resolveTimeoutMs?: number;
  onListening?: (at: { address: string; port: number }) => void;
  log?: (line: string) => void;
  /** Just before the restore (move the address here) and once the tree runs; a throw before the restore fails it, and the source resumes. */
  onEvent?: (e: { phase: 'restoring'; dir: string } | { phase: 'restored'; pid: number }) => void;
}

export interface ReceiveResult {
  pid: number;
  sets: ReceivedSet[];
  restore: RestoreResult;
}

/** The destination: receives one migration's rounds, restores the final set, and returns with the tree running. */
export function receiveMigration(opts: ReceiveOptions): ReceiveResult {
  const log = opts.log ?? (() => {});
  const token = readToken(opts.authToken);
  const listener = listenOn(opts.address ?? '0.0.0.0', opts.port);
  let restored: RestoreResult | undefined;
  let held = false;
  try {
    opts.onListening?.({ address: opts.address ?? '0.0.0.0', port: listener.port });
    const ch = acceptAuthenticated(listener.fd, { token, timeoutMs: SESSION_TIMEOUT_MS, log });
    log(`migration from ${ch.peer}`);
    let sets: ReceivedSet[] = [];
    let asked = false;
    /** The restore's own failure (answered ERROR): what to report once the source has gone. */
    let failure: unknown;
    const noted = <T>(fn: () => T): T => {
      try {
        return fn();
      } catch (e) {
        failure = e;
        throw e;
      }
    };
    try {
      sets = receiveSets(ch, {
        root: opts.imagesDir,
        onSet: (s) => log(`received ${s.dir}: ${s.files} files, ${s.bytes} bytes`),
        onRestore: (req, c) => {
          if (asked) throw new CkptError('USAGE', 'Cannot restore twice in one migration');
          asked = true;
          const { dir, id, pages } = RestoreRequest.parse(req);
          const t = performance.now();
          noted(() => opts.onEvent?.({ phase: 'restoring', dir }));
          let goAt = 0;
          let letGoAt = 0;
          let restoreMs = 0;
          let root = 0;
          const phases: string[] = [];
          const restoreOptions: RestoreOptions = {
            imagesDir: path.join(opts.imagesDir, dir), lazyPages: opts.lazyPages, lazyPagesCommand: opts.lazyPagesCommand,
            // Post-copy: the final set is read from the source, on this connection, then (the lazy-pages server) on its listener.
            pageServer: pages && { ...pages, authToken: opts.authToken, dir, channel: c },
            onEvent: (e) => {
              if (e.phase === 'read') root = e.pids[0]!;
              // Where the restore's time goes (the freeze waits for it): logged with the result.
              if (e.phase === 'read' || e.phase === 'built') phases.push(`${e.phase} ${Math.round(e.ms)} ms`);
              if (e.phase === 'let-go') letGoAt = performance.now();
            },
            confirm: () => {
              restoreMs = performance.now() - t;
              const decision = awaitGo(c, { ready: { ready: true, pid: root, restoreMs }, id, listener: listener.fd, token, resolveMs: opts.resolveTimeoutMs ?? RESOLVE_TIMEOUT_MS, log });
              goAt = performance.now();
              held = decision === 'stop';
              return decision;
            },
          };
          restored = noted(() => restore(restoreOptions));
          log(`restored pid ${restored.pid} in ${Math.round(restored.totalMs)} ms (${phases.join(', ')})${held ? ' (held stopped)' : ''}`);
          return { pid: restored.pid, restoreMs, runMs: letGoAt - goAt };
        },
      });
    } catch (e) {
      // The tree is restored (running, or held stopped): what broke after is only the session's end.
      if (!restored) throw e;
      log(`after the restore: ${(e as Error).message}`);
    } finally {
      ch.close();
    }
    if (!restored) throw failure ?? new CkptError('NETWORK', `Cannot receive the migration from ${ch.peer}: it ended before the final round`);
    if (held) {
      throw new CkptError('TIMEOUT', `Cannot complete the migration from ${ch.peer}: the connection broke after the restore, and the source did not say within ${Math.round((opts.resolveTimeoutMs ?? RESOLVE_TIMEOUT_MS) / 1000)} s whether its tree died; the restored tree (root pid ${restored.pid}) is left stopped here, its network lock in place: if the source's tree is gone, resume it (kill -CONT) and lift the lock, else kill it`);
    }
    opts.onEvent?.({ phase: 'restored', pid: restored.pid });
    return { pid: restored.pid, sets, restore: restored };
  } finally {
    fs.closeSync(listener.fd);
  }
}
