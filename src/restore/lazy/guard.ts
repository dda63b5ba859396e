/**
 * The guard of a lazy restore: a second process that also holds every userfaultfd the
 * server serves, and watches the server. If the server ends before every page is in
 * (killed, crashed), its userfaultfds do not close with it (the guard's copies keep
 * the registrations, so the processes wait on a fault rather than read zeros), and
 * the guard kills every process being served, saying so in the log.
 *
 * fds: 0 commands from the restore (protocol.ts), 1 answers, 2 the log, 3 the read end
 * of a pipe whose write end only the server holds: "done" on it ends the guard's job,
 * end-of-file without it means the server is gone.
 */
import { writeSync } from 'node:fs';
import { closeFd, kill, pollIn, SIG } from '../../sys/index.js';
import { grabFd } from '../../resources/transfer.js';
import { AddRequest, LineReader, type Log } from './protocol.js';

const SERVER_FD = 3;

export function runGuard(serverPid: number, log: Log): number {
  const held: number[] = [];
  const pids: number[] = [];
  const fromCkpt = new LineReader(0);
  const fromServer = new LineReader(SERVER_FD);
  let ckptOpen = true;
  let went = false;
  for (;;) {
    const rev = pollIn([ckptOpen ? 0 : -1, SERVER_FD], -1);
    if (rev[0]) {
      const got = fromCkpt.read();
      for (const line of got.lines) {
        const msg = JSON.parse(line) as { op: string };
        if (msg.op === 'go') {
          went = true;
          continue;
        }
        try {
          const req = AddRequest.parse(msg);
          held.push(grabFd(req.from, req.fd));
          pids.push(req.pid);
          writeSync(1, 'ok\n');
        } catch (e) {
          writeSync(1, `error ${(e as Error).message.replace(/\n/g, ' ')}\n`);
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
      if (got.lines.includes('done')) {
        for (const fd of held) closeFd(fd);
        return 0;
      }
      if (got.eof) {
        for (const pid of pids) {
          try {
            kill(pid, SIG.SIGKILL);
          } catch {
            // already gone
          }
        }
        log(`Cannot restore pages lazily: the lazy-pages server (pid ${serverPid}) ended before every page was in: killed process${pids.length === 1 ? '' : 'es'} ${pids.join(', ')}`);
        return 1;
      }
    }
  }
}
