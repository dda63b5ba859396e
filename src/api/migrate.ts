/**
 * `ckpt migrate` (issue 14): live migration of a process tree to another host running
 * `ckpt migrate --receive` (migrate-receive.ts). Over one authenticated connection (the
 * page server's channel, images/remote/), the source sends pre-dump rounds while the tree
 * runs (each saving only what was written since the last), until a round is small or
 * rounds stop shrinking; then a final dump with the network locked, whose set goes to the
 * destination, which restores it and holds it frozen; then a two-phase commit
 * (migrate-commit.ts): the source's tree dies only once the destination's is ready, and
 * the destination's runs only once the source's is dead. Any failure before the kill
 * resumes the source untouched (the dump's rollback: READY is awaited in its 'written'
 * event, with the tree still frozen), with its memory tracking ended.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { CkptError } from '../common/errors.js';
import { dump, type DumpResult } from '../dump/dump.js';
import { preDump } from '../dump/predump.js';
import { endTracking } from '../dump/tracking.js';
import { connectPageServer, endSession } from '../dump/page-server.js';
import { isAlive as alive } from '../resources/sharing/index.js';
import { unlockNetwork } from '../resources/net/lock.js';
import { askRestore, RefusedError, RESOLVE_TIMEOUT_MS, Running, sendGo, tellOutcome, type Ready } from './migrate-commit.js';
import { FileServer, readToken, type Channel } from '../images/index.js';
import { formatAddr, getsockname } from '../sys/inet.js';
import { listenOn, serveFiles } from './page-server.js';
import type { z } from 'zod';

export interface MigrateOptions {
  /** The destination's `ckpt migrate --receive`. */
  to: { address: string; port: number };
  /** The token file both sides share (0600). */
  authToken: string;
  /** Where the source keeps each round's images (without page files): created 0700 (or empty), removed after the migration, failed or not. */
  workDir: string;
  /** Pre-dump rounds at most before the final dump (default 8). */
  maxRounds?: number;
  /** A round that saves at most this many pages ends the pre-copy (default 256: 1 MiB). */
  smallRound?: number;
  /** How long to keep trying to tell the destination how the migration ended when the connection broke at its end (default 60 s). */
  resolveTimeoutMs?: number;
  /**
   * Each step: a round sent, the final set on the destination (the tree frozen: CRIU's
   * post-dump), the destination's tree ready, its tree running; 'resumed' after a failure
   * that let the source's tree run on (undo what post-dump did). A throw before 'ready'
   * aborts and resumes the source.
   */
  onEvent?: (e: MigrateEvent) => void;
  /** As DumpOptions.timeoutMs. */
  timeoutMs?: number;
  /**
   * Post-copy: the final dump's pages stay here (written locally, not sent before the
   * restore); the destination restores with them served from here (page server mode),
   * and this call returns once it has every page. Its copy then depends on this host
   * until then: if this ckpt dies first, the destination's processes are killed.
   */
  postCopy?: boolean;
  /** With postCopy: how long to wait for the destination's lazy-pages server to come for the pages (default 60 s). */
  serveTimeoutMs?: number;
}

export type MigrateEvent =
  | { phase: 'round'; round: number; pages: number; frozenMs: number; ms: number }
  | { phase: 'written'; ms: number }
  | { phase: 'ready'; pid: number; ms: number }
  | { phase: 'restored'; pid: number; ms: number }
  | { phase: 'resumed'; ms: number }
  | { phase: 'served'; bytes: number; sessions: number; ms: number };

/** Where the final freeze went, ms: the source's dump, its post-dump handler, the restore there, the kill here, the let-go there. */
export interface FreezeParts {
  /** Seize to the set committed there, but the pages: every resource, the network lock, the commit. */
  collectMs: number;
  /** The final dirty pages: read and sent. */
  memoryMs: number;
  /** The 'written' handler (the post-dump action scripts). */
  scriptMs: number;
  /** The destination: RESTORE received to the tree built and frozen (its pre-restore scripts included). */
  restoreMs: number;
  /** The source: READY received to GO sent (the kill of its tree). */
  killMs: number;
  /** The destination: GO received to its tree let go (undefined when GO was lost and a RESOLVE said it). */
  runMs?: number;
}

export interface MigrateResult {
  pid: number;
  /** The pre-copy rounds: pages each saved, and how long the tree was frozen for each. */
  rounds: { pages: number; frozenMs: number }[];
  /**
   * The final dump: pages it saved; `frozenMs` the source's tree from its freeze to its
   * kill; `freezeMs` from that freeze to the destination's tree let go (the source's time
   * to GO plus the destination's GO to let-go); `dumpMs` the freeze to the set committed
   * there; `restoreMs` the restore there up to the tree built.
   */
  final: { pages: number; frozenMs: number; freezeMs: number; dumpMs: number; restoreMs: number; parts: FreezeParts };
  /** The destination's PID of the root (the same PID, in its PID namespace). */
  remotePid: number;
  /** Post-copy: the final set's bytes the destination read from here, over how many sessions, and when it had them all (ms from the start). */
  postCopy?: { bytes: number; sessions: number; doneMs: number };
  totalMs: number;
}

/** A listener on this side's address of the migration's connection (any port): the destination reaches it as it reaches us. */
function pagesListener(ch: Channel): { fd: number; address: string; port: number } {
  const local = getsockname(ch.fd);
  if (!local) throw new CkptError('NETWORK', `Cannot migrate with post-copy: no local address on the connection to ${ch.peer}`);
  const address = formatAddr({ ...local, port: 0 }).replace(/:0$/, '').replace(/^\[(.*)\]$/, '$1');
  const l = listenOn(address, 0);
  return { fd: l.fd, address, port: l.port };
}

/**
 * Post-copy, the migration done: the destination's lazy-pages server reads the rest of
 * the final set from `root` on the listener until it has every page. The source's tree
 * is gone: a failure here is the destination's to report (its processes are killed).
 */
function servePostCopy(args: { ch: Channel; listener: number; token: Buffer; root: string; acceptMs: number }): { bytes: number; sessions: number } {
  // The migration's session is over: its end lets the destination's ckpt return.
  endSession(args.ch);
  return serveFiles(args.listener, { root: args.root, token: args.token, acceptMs: args.acceptMs });
}

/** The pre-copy goes on while rounds shrink by a fifth or more and are not yet small. */
function enoughRounds(pages: number[], opts: MigrateOptions): boolean {
  const last = pages.at(-1)!;
  if (pages.length >= (opts.maxRounds ?? 8)) return true;
  if (last <= (opts.smallRound ?? 256)) return true;
  return pages.length >= 2 && last > pages.at(-2)! * 0.8;
}

export function migrate(pid: number, opts: MigrateOptions): MigrateResult {
  const t0 = performance.now();
  const event = opts.onEvent ?? (() => {});
  fs.mkdirSync(opts.workDir, { recursive: true, mode: 0o700 });
  if (fs.readdirSync(opts.workDir).length > 0) throw new CkptError('USAGE', `Cannot migrate process ${pid}: ${opts.workDir} is not empty`);
  const server = { ...opts.to, authToken: opts.authToken };
  const ch = connectPageServer(server);
  // Post-copy: where the destination's lazy-pages server reads the final set once the migration's connection is done.
  const pages = opts.postCopy ? pagesListener(ch) : undefined;
  const files = pages && new FileServer(opts.workDir);
  const id = randomBytes(8).toString('hex');
  const resolve = (outcome: 'killed' | 'resumed') => tellOutcome(ch, { id, outcome, reconnect: () => connectPageServer({ ...server, timeoutMs: 5000 }), timeoutMs: opts.resolveTimeoutMs ?? RESOLVE_TIMEOUT_MS });
  const rounds: { pages: number; frozenMs: number }[] = [];
  /** RESTORE was sent and not refused: the destination may hold a copy. */
  let asked = false;
  let ready: z.infer<typeof Ready> | undefined;
  /** The destination heard that the source's tree is dead (GO, or RESOLVE "killed"). */
  let told = false;
  try {
    for (let n = 1; rounds.length === 0 || !enoughRounds(rounds.map((r) => r.pages), opts); n++) {
      const r = preDump(pid, {
        imagesDir: path.join(opts.workDir, String(n)), parent: n > 1 ? `../${n - 1}` : undefined, timeoutMs: opts.timeoutMs,
        pageServer: { channel: ch, dir: String(n) },
      });
      rounds.push({ pages: r.pages, frozenMs: r.frozenMs });
      event({ phase: 'round', round: n, pages: r.pages, frozenMs: r.frozenMs, ms: performance.now() - t0 });
    }
    const at = { frozen: 0, written: 0, scripted: 0, ready: 0, go: 0 };
    let d: DumpResult | undefined;
    let running: z.infer<typeof Running> | undefined;
    // Right after the kill (before the dump ends the tracking and its lock's leftovers): GO.
    const go = () => {
      at.go = performance.now();
      try {
        running = sendGo(ch, files);
      } catch {
        // GO or its answer lost: resolved below, on a new connection
      }
    };
    try {
      d = dump(pid, {
        imagesDir: path.join(opts.workDir, 'final'), parent: `../${rounds.length}`, timeoutMs: opts.timeoutMs,
        // Post-copy: the set stays here, read by the destination as it restores.
        pageServer: pages ? undefined : { channel: ch, dir: 'final' },
        onEvent: (e) => {
          if (e.phase === 'frozen') at.frozen = performance.now();
          if (e.phase === 'killed') go();
          if (e.phase !== 'written') return;
          // The set is committed on the destination and the tree still frozen: restore there.
          at.written = performance.now();
          event({ phase: 'written', ms: at.written - t0 });
          at.scripted = performance.now();
          asked = true;
          try {
            ready = askRestore(ch, { dir: 'final', id, pages: pages && { address: pages.address, port: pages.port }, files });
          } catch (err) {
            if (err instanceof RefusedError) asked = false;
            throw err;
          }
          at.ready = performance.now();
          event({ phase: 'ready', pid: ready.pid, ms: at.ready - t0 });
        },
      });
    } catch (e) {
      // Past READY the dump kills the tree; a failure after that (the tree gone) is not a rollback.
      if (!ready || alive(pid)) throw e;
    }
    // The tree is dead here: only the destination's copy is left, to be let go.
    if (!at.go) go();
    const goAt = at.go;
    if (!running) resolve('killed');
    told = true;
    event({ phase: 'restored', pid: ready!.pid, ms: performance.now() - t0 });
    // The tree is gone here; its lock has nothing left to hold back.
    if (d?.networkLock) unlockNetwork({ name: d.networkLock.name, method: d.networkLock.method as 'nftables' | 'iptables' });
    const parts: FreezeParts = {
      collectMs: at.written - at.frozen - (d?.memoryMs ?? 0), memoryMs: d?.memoryMs ?? 0, scriptMs: at.scripted - at.written,
      restoreMs: ready!.restoreMs, killMs: goAt - at.ready, runMs: running?.runMs,
    };
    const final = {
      pages: d?.pages ?? 0, frozenMs: d?.frozenMs ?? goAt - at.frozen, freezeMs: goAt - at.frozen + (running?.runMs ?? 0),
      dumpMs: at.written - at.frozen, restoreMs: ready!.restoreMs, parts,
    };
    const postCopy = pages && servePostCopy({ ch, listener: pages.fd, token: readToken(opts.authToken), root: opts.workDir, acceptMs: opts.serveTimeoutMs ?? RESOLVE_TIMEOUT_MS });
    // What the restore itself read on the migration's connection counts too.
    if (postCopy) postCopy.bytes += files!.served;
    if (postCopy) event({ phase: 'served', bytes: postCopy.bytes, sessions: postCopy.sessions, ms: performance.now() - t0 });
    return { pid, rounds, final, remotePid: ready!.pid, postCopy: postCopy && { ...postCopy, doneMs: performance.now() - t0 }, totalMs: performance.now() - t0 };
  } catch (e) {
    if (ready && !alive(pid)) {
      if (told) throw e; // a failure after the migration: nothing to undo
      // Killed here, and the destination could not be told: it holds the only copy, stopped.
      throw new CkptError('NETWORK', `Cannot migrate process ${pid}: its tree was killed here once ${ch.peer} had restored it, but ${ch.peer} could not be told to let it run (${(e as Error).message}); it holds the tree stopped there: resume it there (kill -CONT) once sure`, { cause: e });
    }
    // The tree runs here again: no copy may run there, and the tracking of the rounds goes.
    if (asked) {
      try {
        resolve('resumed');
      } catch (err) {
        (e as Error).message += ` (the destination could not be told that the tree runs here again: ${(err as Error).message}; it kills or leaves stopped what it restored, see its log)`;
      }
    }
    const also = (what: string, err: unknown) => void ((e as Error).message += ` (also: ${what}: ${(err as Error).message})`);
    try {
      if (rounds.length > 0) endTracking(path.join(opts.workDir, String(rounds.length)));
    } catch (err) {
      also('the memory tracking could not be ended', err);
    }
    try {
      event({ phase: 'resumed', ms: performance.now() - t0 });
    } catch (err) {
      also('after the tree resumed', err);
    }
    throw e;
  } finally {
    endSession(ch);
    files?.close();
    if (pages) fs.closeSync(pages.fd);
    // Rounds without their pages are of no use once the destination has them, or once it failed.
    fs.rmSync(opts.workDir, { recursive: true, force: true });
  }
}

