/**
 * The lazy-pages server: a process of its own (started by a lazy restore, it outlives
 * ckpt), which holds the userfaultfd of every lazily restored process and copies its
 * pages in from the page files (engine.ts), and exits once every saved page is in, which
 * drops the registrations. ckpt serves the faults itself from the tree's let-go until
 * this process is up ("handover"), so its start-up (a Node process) never holds the
 * tree. One synchronous poll loop, no event loop: a fault is a thread waiting.
 *
 * Any failure (an unreadable page file, a copy the kernel refuses) kills every process
 * it serves, with the reason in the log: a process must not run on with pages missing.
 *
 * fds: 0 a socket from the restore (protocol.ts: requests with userfaultfds in, "ready"
 * or "error …" out), 1 and 2 the log, 3 a socket to the guard (guard.ts), which is given
 * the userfaultfd of every process forked from a served one, and is told "done" when
 * the job is over.
 */
import { closeSync, writeSync } from 'node:fs';
import { CkptError } from '../../common/errors.js';
import { RemotePages } from '../../images/index.js';
import { connectPageServer } from '../../resources/page-server-connect.js';
import { pollIn } from '../../sys/index.js';
import { Fatal, killPids, LazyServer } from './engine.js';
import { AddRequest, HandedOver, LineReader, RemoteSource, sendLine, type Log } from './protocol.js';

const CKPT_FD = 0;
const GUARD_FD = 3;

/**
 * `ckpt lazy-pages serve DIR [REMOTE]`: runs the server until every page is in; returns
 * the exit status. REMOTE (JSON, RemoteSource): the page files are on a page server.
 */
export function runServer(imagesDir: string, args: { log: Log; remote?: string }): number {
  const log = args.log;
  let server: LazyServer | undefined;
  let remote: RemotePages | undefined;
  let ckptOpen = true;
  let went = false;
  /** Until ckpt hands over, it serves the faults and reads the events itself. */
  let mine = false;
  const lines = new LineReader(CKPT_FD);
  const pids: number[] = [];
  try {
    // The images are read before the first line.
    if (args.remote) {
      const at = RemoteSource.parse(JSON.parse(args.remote));
      // Connected at the first fetch: the page server serves ckpt's connection until the handover.
      remote = new RemotePages(() => connectPageServer(at), at.files);
    }
    server = new LazyServer(imagesDir, { log, remote });
    server.onFork = (uffd) => sendLine(GUARD_FD, { line: { op: 'fork' }, fds: [uffd] });
    server.onPid = (pid) => sendLine(GUARD_FD, { line: { op: 'pid', pid } });
    for (;;) {
      if (!ckptOpen && (!mine || server.done)) break;
      const uffds = mine ? server.uffds : [];
      const pidfds = mine ? server.pidfds : [];
      const rev = pollIn([ckptOpen ? CKPT_FD : -1, ...uffds, ...pidfds], mine ? server.timeout : -1);
      if (rev[0]) {
        const got = lines.read();
        for (const { msg, fds } of got.lines) {
          if (msg.op === 'go') {
            went = true;
            server.go(msg['prefetch'] !== false, typeof msg['letGoNs'] === 'string' && /^\d+$/.test(msg['letGoNs']) ? BigInt(msg['letGoNs']) : undefined);
            writeSync(CKPT_FD, 'ready\n');
          } else if (msg.op === 'handover') {
            // Processes forked while ckpt served come with it (ckpt gave the guard theirs).
            server.adopt(HandedOver.parse(msg), fds);
            mine = true;
          } else {
            const req = AddRequest.parse(msg);
            pids.push(req.pid);
            server.add(req, fds[0]!);
          }
        }
        if (got.eof) {
          ckptOpen = false;
          // The restore failed before letting the tree go, or ckpt died before handing over.
          if (!mine) return went ? fail(`Cannot serve pages: ckpt ended before it handed the faults over`) : 0;
        }
      }
      rev.slice(1, 1 + uffds.length).forEach((r, i) => {
        if (r) server!.drain(i);
      });
      rev.slice(1 + uffds.length).forEach((r, i) => {
        if (r) server!.exited(i);
      });
      if (mine) server.work();
    }
    sendLine(GUARD_FD, { line: { op: 'done' } });
    closeSync(GUARD_FD);
    server.close();
    // Every page is in: the page server may stop.
    remote?.done();
    return 0;
  } catch (e) {
    return fail(e instanceof Fatal || e instanceof CkptError ? e.message : `Cannot serve pages: ${(e as Error).stack ?? String(e)}`);
  }

  function fail(why: string): number {
    try {
      writeSync(CKPT_FD, `error ${why.replace(/\n/g, ' ')}\n`);
    } catch {
      // ckpt is gone
    }
    killPids(pids, why, log);
    return 1;
  }
}
