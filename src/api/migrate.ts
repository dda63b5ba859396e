/**
 * `ckpt migrate` (issue 14): live migration of a process tree to another host running
 * `ckpt migrate --receive`. Over one authenticated connection (the page server's channel,
 * images/remote/), the source sends pre-dump rounds while the tree runs (each saving only
 * what was written since the last), until a round is small or rounds stop shrinking;
 * then a final dump with the network locked, whose set goes to the destination, which
 * restores it. Only when the destination answers that the tree runs does the source's
 * tree die (the dump's kill); any failure before resumes it untouched (the dump's
 * rollback: the answer is awaited in its 'written' event, with the tree still frozen).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { CkptError } from '../common/errors.js';
import { FRAME, readToken, receiveSets, type Channel, type ReceivedSet } from '../images/index.js';
import { dump, type DumpResult } from '../dump/dump.js';
import { preDump } from '../dump/predump.js';
import { connectPageServer, endSession } from '../dump/page-server.js';
import { restore, type RestoreResult } from '../restore/restore.js';
import { setSocketTimeouts } from '../sys/inet.js';
import { unlockNetwork } from '../resources/net/lock.js';
import { acceptAuthenticated, listenOn, SESSION_TIMEOUT_MS } from './page-server.js';

/** How long the source waits for the destination's restore (the tree is frozen meanwhile). */
const RESTORE_TIMEOUT_MS = 120_000;

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
  /** Each step: a round sent, the final set on the destination (the tree frozen), the tree running there. A throw before 'restored' aborts and resumes the source. */
  onEvent?: (e: MigrateEvent) => void;
  /** As DumpOptions.timeoutMs. */
  timeoutMs?: number;
}

export type MigrateEvent =
  | { phase: 'round'; round: number; pages: number; frozenMs: number; ms: number }
  | { phase: 'written'; ms: number }
  | { phase: 'restored'; pid: number; ms: number };

export interface MigrateResult {
  pid: number;
  /** The pre-copy rounds: pages each saved, and how long the tree was frozen for each. */
  rounds: { pages: number; frozenMs: number }[];
  /** The final dump: pages it saved, and the tree's freeze from seize to the destination's answer. */
  final: { pages: number; frozenMs: number; dumpMs: number; restoreMs: number };
  /** The destination's PID of the root (the same PID, in its PID namespace). */
  remotePid: number;
  totalMs: number;
}

const RestoreAnswer = z.object({ pid: z.number().int().positive(), restoreMs: z.number().nonnegative() });

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
  const ch = connectPageServer({ ...opts.to, authToken: opts.authToken });
  try {
    const rounds: { pages: number; frozenMs: number }[] = [];
    for (let n = 1; rounds.length === 0 || !enoughRounds(rounds.map((r) => r.pages), opts); n++) {
      const r = preDump(pid, {
        imagesDir: path.join(opts.workDir, String(n)), parent: n > 1 ? `../${n - 1}` : undefined, timeoutMs: opts.timeoutMs,
        pageServer: { channel: ch, dir: String(n) },
      });
      rounds.push({ pages: r.pages, frozenMs: r.frozenMs });
      event({ phase: 'round', round: n, pages: r.pages, frozenMs: r.frozenMs, ms: performance.now() - t0 });
    }
    let answer: z.infer<typeof RestoreAnswer> | undefined;
    let writtenAt = 0;
    let frozenAt = 0;
    const d: DumpResult = dump(pid, {
      imagesDir: path.join(opts.workDir, 'final'), parent: `../${rounds.length}`, timeoutMs: opts.timeoutMs,
      pageServer: { channel: ch, dir: 'final' },
      onEvent: (e) => {
        if (e.phase === 'frozen') frozenAt = performance.now();
        if (e.phase !== 'written') return;
        // The set is committed on the destination and the tree still frozen: restore there.
        writtenAt = performance.now();
        event({ phase: 'written', ms: writtenAt - t0 });
        answer = askRestore(ch, 'final');
        event({ phase: 'restored', pid: answer.pid, ms: performance.now() - t0 });
      },
    });
    // The tree is gone here; its lock has nothing left to hold back.
    if (d.networkLock) unlockNetwork({ name: d.networkLock.name, method: d.networkLock.method as 'nftables' | 'iptables' });
    const final = { pages: d.pages, frozenMs: d.frozenMs, dumpMs: writtenAt - frozenAt, restoreMs: answer!.restoreMs };
    return { pid, rounds, final, remotePid: answer!.pid, totalMs: performance.now() - t0 };
  } finally {
    endSession(ch);
    // Rounds without their pages are of no use once the destination has them, or once it failed.
    fs.rmSync(opts.workDir, { recursive: true, force: true });
  }
}

function askRestore(ch: Channel, dir: string): z.infer<typeof RestoreAnswer> {
  setSocketTimeouts(ch.fd, RESTORE_TIMEOUT_MS);
  ch.sendJson(FRAME.RESTORE, { dir });
  const raw = ch.expectOk(`restore on ${ch.peer}`);
  const parsed = RestoreAnswer.safeParse(JSON.parse(raw.toString('utf8')));
  if (!parsed.success) throw new CkptError('NETWORK', `Cannot restore on ${ch.peer}: it answered ${raw.toString('utf8').slice(0, 200)}`);
  return parsed.data;
}

export interface ReceiveOptions {
  /** Where the rounds go (DIR/1, DIR/2…, DIR/final): new or empty. */
  imagesDir: string;
  address?: string;
  port: number;
  authToken: string;
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
  try {
    opts.onListening?.({ address: opts.address ?? '0.0.0.0', port: listener.port });
    const ch = acceptAuthenticated(listener.fd, { token, timeoutMs: SESSION_TIMEOUT_MS, log });
    log(`migration from ${ch.peer}`);
    try {
      const sets = receiveSets(ch, {
        root: opts.imagesDir,
        onSet: (s) => log(`received ${s.dir}: ${s.files} files, ${s.bytes} bytes`),
        onRestore: (req) => {
          if (restored) throw new CkptError('USAGE', 'Cannot restore twice in one migration');
          const dir = z.object({ dir: z.literal('final') }).parse(req).dir;
          const t = performance.now();
          opts.onEvent?.({ phase: 'restoring', dir });
          restored = restore({ imagesDir: path.join(opts.imagesDir, dir) });
          log(`restored pid ${restored.pid} in ${Math.round(restored.totalMs)} ms`);
          return { pid: restored.pid, restoreMs: performance.now() - t };
        },
      });
      if (!restored) throw new CkptError('NETWORK', `Cannot receive the migration from ${ch.peer}: it ended before the final round`);
      opts.onEvent?.({ phase: 'restored', pid: restored.pid });
      return { pid: restored.pid, sets, restore: restored };
    } finally {
      ch.close();
    }
  } finally {
    fs.closeSync(listener.fd);
  }
}
