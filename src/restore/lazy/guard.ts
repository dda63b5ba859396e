/**
 * The guard of a lazy restore: a second process that also holds every userfaultfd the
 * server serves, and watches the server. If the server ends before every page is in
 * (killed, crashed), its userfaultfds do not close with it (the guard's copies keep
 * the registrations, so the processes wait on a fault rather than read zeros), and
 * the guard kills every process being served, saying so in the log.
 *
 * fds: 0 a socket from the restore (protocol.ts: requests with userfaultfds in, "ready"
 * out), 1 and 2 the log, 3 a socket whose other end only the server holds: "done" on it
 * ends the guard's job, end-of-file without it means the server is gone.
 */
import { writeSync } from 'node:fs';
import { readStatus } from '../../proc/index.js';
import { closeFd, decodeUffdMsg, kill, pollIn, readNonBlocking, SIG, UFFD_MSG_SIZE, uffdProcessAlive } from '../../sys/index.js';
import { withDescendants } from './children.js';
import { AddRequest, LineReader, type Log } from './protocol.js';

const CKPT_FD = 0;
const SERVER_FD = 3;

export function runGuard(serverPid: number, log: Log): number {
  const held: number[] = [];
  const pids: number[] = [];
  const fromCkpt = new LineReader(0);
  const fromServer = new LineReader(SERVER_FD);
  let ckptOpen = true;
  let went = false;
  for (;;) {
    const rev = pollIn([ckptOpen ? CKPT_FD : -1, SERVER_FD], -1);
    if (rev[0]) {
      const got = fromCkpt.read();
      for (const { msg, fds } of got.lines) {
        held.push(...fds);
        if (msg.op === 'go') {
          went = true;
          writeSync(CKPT_FD, 'ready\n');
          continue;
        }
        if (msg.op === 'fork') continue; // forked while ckpt served its faults
        if (msg.op === 'pid') {
          if (typeof msg['pid'] === 'number' && msg['pid'] > 0) pids.push(msg['pid']);
          continue;
        }
        try {
          const req = AddRequest.parse(msg);
          if (fds.length !== 1) throw new Error(`the userfaultfd of process ${req.pid} did not come with its request`);
          pids.push(req.pid);
        } catch (e) {
          writeSync(CKPT_FD, `error ${(e as Error).message.replace(/\n/g, ' ')}\n`);
        }
      }
      if (got.eof) {
        ckptOpen = false;
        // The restore failed before letting the tree go: it kills what it built.
        if (!went) return 0;
      }
    }
    if (rev[1]) {
      const got = fromServer.read();
      // "fork": the userfaultfd of a process forked from a served one; "pid": its pid, once known.
      for (const l of got.lines) {
        held.push(...l.fds);
        if (l.msg.op === 'pid' && typeof l.msg['pid'] === 'number' && l.msg['pid'] > 0) pids.push(l.msg['pid']);
      }
      if (got.lines.some((l) => l.msg.op === 'done')) {
        for (const fd of held) closeFd(fd);
        return 0;
      }
      if (got.eof) {
        // With the processes they forked since (whose userfaultfds the guard holds too):
        // they miss what their parent missed. Those the server named are in `pids` even
        // if their parent exited since.
        const all = withDescendants(pids);
        for (const pid of all) {
          try {
            kill(pid, SIG.SIGKILL);
          } catch {
            // already gone
          }
        }
        log(`Cannot restore pages lazily: the lazy-pages server (pid ${serverPid}) ended before every page was in: killed process${all.length === 1 ? '' : 'es'} ${all.join(', ')}`);
        killUnnamed(held, log);
        return 1;
      }
    }
  }
}

/**
 * A process forked from a served one whose pid the server never learnt (its parent
 * exited before the server looked) is below nobody the guard knows. Its userfaultfd
 * stays held, so it waits at its first missing page rather than read a zero there;
 * that fault names its thread (UFFD_FEATURE_THREAD_ID), and its process is killed.
 * Returns once no process is left behind any held userfaultfd.
 */
function killUnnamed(held: number[], log: Log): void {
  const buf = Buffer.alloc(UFFD_MSG_SIZE * 16);
  for (;;) {
    const live = held.filter((fd) => uffdProcessAlive(fd));
    if (live.length === 0) return;
    const rev = pollIn(live, 200);
    live.forEach((fd, i) => {
      if (!rev[i]) return;
      const n = readNonBlocking(fd, buf);
      for (let off = 0; off + UFFD_MSG_SIZE <= n; off += UFFD_MSG_SIZE) {
        const m = decodeUffdMsg(buf, off);
        if (m.event === 'fork') held.push(m.ufd);
        if (m.event !== 'fault' || m.tid <= 0) continue;
        const pid = tgidOf(m.tid);
        try {
          kill(pid, SIG.SIGKILL);
          log(`Cannot restore pages lazily: killed process ${pid}, forked from a served process, at its first fault after the lazy-pages server ended`);
        } catch {
          // already gone
        }
      }
    });
  }
}

function tgidOf(tid: number): number {
  try {
    return readStatus(tid).tgid;
  } catch {
    return tid;
  }
}
