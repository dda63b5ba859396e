/**
 * The saved shape of a process's fd table: one entry per fd, discriminated by kind.
 * Everything here comes back from an image, so it is validated as untrusted input:
 * paths must be absolute and NUL-free, fd numbers unique, a dup must point at an
 * earlier fd.
 */
import { z } from 'zod';
import { ShmemObject } from '../memory/state.js';
import { zBig, zU64 } from '../../images/index.js';
import { ptyState, termiosState } from './tty-schema.js';
import { fdOwner, fileBase, PATH_MAX, payload, sockOpt, streamBase, zBlobName, zFd, zIno, zPath, zShutdown } from './schema-base.js';
import { inetEntry, ipsockEntry, mcastMembership, netlinkEntry, packetEntry, tcpRepairState } from './socket-schema.js';

export { fdOwner, payload, sockOpt, zPath } from './schema-base.js';
export * from './socket-schema.js';


/**
 * A file whose name this fd used was removed while it keeps another name: reopened by
 * its file handle (name_to_handle_at) on the mount at `mount`, checked to be inode `ino`.
 */
/** The inode's write-life hint (F_SET_RW_HINT: RWH_WRITE_LIFE_SHORT 2 … EXTREME 5), when one is set. */
const rwHint = z.number().int().min(1).max(5);
const fileHandle = z.object({
  mount: zPath,
  type: z.number().int(),
  bytes: z.string().regex(/^([0-9a-f]{2}){1,128}$/),
  ino: zIno,
});
/**
 * The inode a path led to at dump: device, inode number and birth time (statx btime in
 * ns; 0 where the file system has none). A restore on the same file system refuses a
 * path that now leads to another inode (kinds/regular.ts).
 */
/** `boot`: the boot the numbers belong to (absent in images of ckpt before it: compared as this boot's). */
export const fileIdentity = z.object({
  dev: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER), ino: zIno, btime: zBig, boot: z.string().regex(/^[0-9a-f-]{36}$/).optional(),
});
/** A regular file reopened by path (or by `handle`). `size` is what it had at dump (for a warning if it shrank). */
export const regEntry = z.object({
  kind: z.literal('reg'), ...fileBase, path: zPath, size: zBig, handle: fileHandle.optional(), identity: fileIdentity.optional(), rwHint: rwHint.optional(),
});
export const dirEntry = z.object({ kind: z.literal('dir'), ...fileBase, path: zPath, identity: fileIdentity.optional() });
/**
 * An O_PATH fd on something that is neither a regular file nor a directory (a symbolic
 * link opened with O_NOFOLLOW, a FIFO, a socket file, a device node): only a reference
 * to the inode, reopened with O_PATH at `path`, which must still hold that type.
 */
export const pathEntry = z.object({
  kind: z.literal('path'), ...fileBase, path: zPath, type: z.enum(['symlink', 'fifo', 'socket', 'chr', 'blk']), identity: fileIdentity.optional(),
});
/**
 * A file with no name left (unlinked, O_TMPFILE): its content is saved once per inode,
 * sparse, in page file `pages` (keyed by file offset); images of older versions hold it
 * in `blob`. Every description of one inode (`dev`, `ino`) opens one recreated file.
 */
export const deletedEntry = z
  .object({
    kind: z.literal('deleted'),
    ...fileBase,
    /** Where it lived, without the " (deleted)" suffix; the restored copy is created next to it. */
    path: zPath,
    blob: zBlobName.optional(),
    pages: zBlobName.optional(),
    dev: z.number().int().min(0).optional(),
    ino: z.number().int().min(0).optional(),
    /** Permission bits (st_mode & 07777). */
    mode: z.number().int().min(0).max(0o7777),
    uid: z.number().int().min(0).max(0xffffffff),
    gid: z.number().int().min(0).max(0xffffffff),
    size: zBig.refine((v) => v >= 0n && v < 1n << 53n, 'expected a file size'),
    /** An O_TMPFILE file: whether linkat may still name it (I_LINKABLE; O_EXCL makes it never). Absent in older images: linkable. */
    linkable: z.boolean().optional(),
    rwHint: rwHint.optional(),
  })
  .refine((e) => (e.blob === undefined) !== (e.pages === undefined), 'exactly one of blob and pages');
/**
 * A FIFO or device node whose name was removed: it is recreated (mknod) under a free
 * name, opened and removed again, with these permission bits and owner.
 */
const removedNode = z.object({
  mode: z.number().int().min(0).max(0o7777),
  uid: z.number().int().min(0).max(0xffffffff),
  gid: z.number().int().min(0).max(0xffffffff),
});
/** A character device reopened by path; rdev is checked so the path still means the same device. */
export const chrEntry = z.object({
  kind: z.literal('chr'), ...fileBase, path: zPath, rdev: z.number().int().min(0), deleted: removedNode.optional(),
});
/** fds 0-2 that lead outside the tree (pipe, socket, tty…): restored only from an fd of ckpt (--inherit-fd, --shell-job). */
export const inheritEntry = z.object({
  kind: z.literal('inherit'),
  /** Only the standard descriptors: the restorer's other fds are not the target's business. */
  fd: z.number().int().min(0).max(2),
  /** What it was at dump, e.g. "pipe:[123]" or "/dev/pts/3", for messages. */
  link: z.string().max(PATH_MAX),
  tty: z.boolean(),
  /** FD_CLOEXEC at dump (absent in older images: not set). */
  cloexec: z.boolean().optional(),
  /** A terminal's settings at dump: --shell-job gives them to the restoring terminal (absent in older images). */
  termios: termiosState.optional(),
});
/** An end of an anonymous pipe (`pipe:[ino]`); which end is the access mode in `flags`. Its data is in `pipes`. */
export const pipeEntry = z.object({ kind: z.literal('pipe'), ...streamBase, ino: zIno });
/** A named pipe reopened by path; its buffered data (the pipe object's) is in `pipes` under `fifo:dev:ino`. */
export const fifoEntry = z.object({
  kind: z.literal('fifo'), ...streamBase, path: zPath, dev: z.number().int().min(0), ino: zIno, deleted: removedNode.optional(),
  /** Unlinked from `path` but linked elsewhere: found by its file handle. */
  handle: fileHandle.optional(),
});
/** One end of a unix socketpair; the socket itself (type, peer, queue) is in `unix`. */
export const unixEntry = z.object({ kind: z.literal('unix'), ...streamBase, ino: zIno });


/** A pipe object (anonymous `pipe:ino` or named `fifo:dev:ino`): capacity and the bytes in its buffer. */
export const pipeObject = z.object({
  id: z.string().regex(/^(pipe:\d+|fifo:\d+:\d+)$/),
  /** F_GETPIPE_SZ */
  capacity: z.number().int().min(4096).max(2 ** 31),
  data: payload,
  /**
   * Packet-mode pipe (written through an O_DIRECT end): the size of each packet the
   * data holds, in order (a read returns one at a time); absent when it is one stream.
   */
  packets: z.array(z.number().int().min(1).max(2 ** 31)).max(1 << 20).optional(),
});


/** A unix address: the sun_path bytes in hex (an abstract name starts with 00). */
const zUnixAddr = z.string().max(216).regex(/^([0-9a-f]{2})+$/);

/** The file a socket is bound to (a path name, not abstract), as it was at dump. */
export const unixFile = z.object({
  mode: z.number().int().min(0).max(0o7777),
  uid: z.number().int().min(0),
  gid: z.number().int().min(0),
  dev: z.number().int().min(0),
  inode: zIno,
  /** Where the file is now when it was renamed after bind (absolute). */
  movedTo: zPath.optional(),
  /** Unlinked after bind: the socket keeps its name but no file. */
  gone: z.literal(true).optional(),
  /** For a relative name: the directory it was bound in. */
  dir: zPath.optional(),
});

const zId = z.number().int().min(0).max(0xffffffff);
const msgCredSchema = z.object({ pid: z.number().int().min(1).max(4194304), uid: zId, gid: zId });
export const peerCredSchema = z.object({
  pid: z.number().int().min(1).max(4194304),
  uid: zId,
  gid: zId,
  groups: z.array(zId).max(65536),
});

/**
 * A unix socket: how it is connected, its name and its receive queue, as messages (one
 * chunk for a stream). kinds/unix-build.ts rebuilds every socket of the tree at once.
 */
export const unixObject = z.object({
  ino: zIno,
  /** The socket it is connected to (0: none, or a connection not yet accepted: see `pending`). */
  peer: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  /** Its own name (getsockname); an accepted socket has its listener's. */
  addr: zUnixAddr.optional(),
  /** It got its name by being accepted from a listener bound to `addr` (it has no file of its own). */
  accepted: z.literal(true).optional(),
  file: unixFile.optional(),
  /** Listening, with this backlog; `waiting` lists the clients of connections not accepted yet, in queue order. */
  backlog: z.number().int().min(0).max(2 ** 31).optional(),
  waiting: z.array(zIno).max(1 << 20).optional(),
  /** Connected one way (a datagram socket) or waiting to be accepted (a stream client): the name it is connected to. */
  peerAddr: zUnixAddr.optional(),
  /** A stream client whose connection waits, not accepted yet, in the backlog of the listener at `peerAddr`. */
  pending: z.literal(true).optional(),
  /** A stream whose peer was closed: what it queued is still to be read, then end of file. */
  peerClosed: z.literal(true).optional(),
  /** Its peer is outside the tree (--ext-unix-sk): connected again to `peerAddr` at restore. */
  external: z.literal(true).optional(),
  /** The sender of each queued datagram (its address, '' when unnamed), when one is not the peer. */
  senders: z.array(z.union([zUnixAddr, z.literal('')])).max(1 << 20).optional(),
  type: z.union([z.literal(1), z.literal(2), z.literal(5)]),
  sndbuf: z.number().int().min(0),
  rcvbuf: z.number().int().min(0),
  /** Options other than the buffer sizes that differ from a fresh socketpair's (absent in older images). */
  opts: z.array(sockOpt).max(256).optional(),
  /** This end's sk_shutdown and its peer's (shutdown() is restored on both once both queues are refilled). */
  shutdown: zShutdown,
  peerShutdown: zShutdown,
  /** Length of each queued message, in order; their bytes are `data` concatenated. */
  lengths: z.array(z.number().int().min(0)).max(1 << 20),
  data: payload,
  /**
   * Its peer credentials (SO_PEERCRED, SO_PEERGROUPS): the process and its effective ids
   * when the pair was made, the connection was made (an accepted socket: its client's) or,
   * for a listener and its clients, listen() was called. Absent when the kernel has none.
   */
  cred: peerCredSchema.optional(),
  /** A client not accepted yet, or one connected outside (--ext-unix-sk): the process (and its ids) that connects it again (what the listener's side will see). */
  connector: peerCredSchema.optional(),
  /** The credentials each queued message carries (SCM_CREDENTIALS; null: none), when one carries some. */
  msgCreds: z.array(z.union([msgCredSchema, z.null()])).max(1 << 20).optional(),
});

/** A terminal fd (kinds/tty.ts): the master or a slave of a pty pair whose master the tree holds, with the pair's state. */
export const ttyEntry = z.object({ kind: z.literal('tty'), ...streamBase, end: z.enum(['master', 'slave']), pty: ptyState });
/** /dev/tty: reopened by the process, which then has its controlling terminal back. */
export const devttyEntry = z.object({ kind: z.literal('devtty'), ...streamBase });

/** An fd sharing its open file description (offset, flags) with an earlier fd. */
export const dupEntry = z.object({ kind: z.literal('dup'), fd: zFd, of: zFd, cloexec: z.boolean() });

/** A memfd: its contents are a shared memory object, saved once even when it is also mapped. */
export const memfdEntry = z.object({ kind: z.literal('memfd'), ...fileBase, obj: ShmemObject });

/** A timespec as fdinfo prints it: (sec, nsec). */
const zTimespec = z.object({ sec: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER), nsec: z.number().int().min(0).max(999_999_999) });

/** An eventfd (`anon_inode:[eventfd]`): its counter and whether it reads in semaphore mode. */
export const eventfdEntry = z.object({
  kind: z.literal('eventfd'),
  ...streamBase,
  count: zU64.refine((v) => v <= 0xfffffffffffffffen, 'an eventfd count is at most 2^64-2'),
  semaphore: z.boolean(),
});
/**
 * A timerfd (`anon_inode:[timerfd]`): its clock, the time left until it next expires
 * (relative, whatever flags it was set with), its interval, and the expirations not read yet.
 */
export const timerfdEntry = z.object({
  kind: z.literal('timerfd'),
  ...streamBase,
  clockid: z.number().int().min(0).max(15),
  /** timerfd_settime flags: TFD_TIMER_ABSTIME (1), TFD_TIMER_CANCEL_ON_SET (2). */
  settime: z.number().int().min(0).max(3),
  value: zTimespec,
  interval: zTimespec,
  ticks: zU64,
});
/** A signalfd (`anon_inode:[signalfd]`): the signals it reads (bit n-1 = signal n). */
export const signalfdEntry = z.object({ kind: z.literal('signalfd'), ...streamBase, sigmask: zU64 });
/**
 * One epoll watch: the fd number it was added under, its event mask (EPOLLET… included)
 * and user data. `via`: fd `tfd` was closed since (or is another file now); the watched
 * file is this process's fd `via`.
 */
export const epollWatch = z.object({ tfd: zFd, events: z.number().int().min(0).max(0xffffffff), data: zU64, via: zFd.optional() });
/**
 * An epoll instance (`anon_inode:[eventpoll]`) and the watches on fds of this process;
 * they are added back once every fd of the process is in place.
 */
/** An epoll instance's busy-poll parameters (EPIOCGPARAMS, Linux 6.9), when any is set. */
export const epollBusyPoll = z.object({
  usecs: z.number().int().min(0).max(0x7fffffff),
  budget: z.number().int().min(0).max(0xffff),
  prefer: z.number().int().min(0).max(1),
});
export const epollEntry = z.object({ kind: z.literal('epoll'), ...streamBase, watches: z.array(epollWatch).max(1 << 20), busyPoll: epollBusyPoll.optional() });

/** One inotify watch: its number, its mask (IN_ONESHOT, IN_EXCL_UNLINK included) and a path to the watched inode. */
export const inotifyWatch = z.object({ wd: z.number().int().min(1).max(1 << 20), mask: z.number().int().min(1).max(0xffffffff), path: zPath });
/** An inotify instance (`anon_inode:inotify`, kinds/inotify.ts): its watches by increasing number; its queue was empty. */
export const inotifyEntry = z
  .object({ kind: z.literal('inotify'), ...streamBase, watches: z.array(inotifyWatch).max(1 << 16) })
  .refine((e) => e.watches.every((w, i) => i === 0 || w.wd > e.watches[i - 1]!.wd), 'inotify watches must come by increasing number');

const zU32 = z.number().int().min(0).max(0xffffffff);
/** One fanotify mark (kinds/fanotify.ts): what it is on, found by path, its mark flags, mask and ignored mask. */
export const fanotifyMark = z.object({ type: z.enum(['inode', 'mount', 'filesystem']), path: zPath, mflags: zU32, mask: zU32, ignored: zU32 });
/** A fanotify group (`anon_inode:[fanotify]`) of class FAN_CLASS_NOTIF: its fanotify_init flags and marks; its queue was empty. */
export const fanotifyEntry = z.object({
  kind: z.literal('fanotify'),
  ...streamBase,
  initFlags: zU32.refine((v) => (v & 0xc) === 0, 'only FAN_CLASS_NOTIF groups are saved'),
  eventFlags: zU32,
  marks: z.array(fanotifyMark).max(1 << 16),
});
/** A pidfd (`anon_inode:[pidfd]`, kinds/pidfd.ts) of process (or, with `thread`, thread) `pid` of the tree. */
export const pidfdEntry = z.object({ kind: z.literal('pidfd'), ...streamBase, pid: z.number().int().min(1).max(0x3fffffff), thread: z.boolean() });

/**
 * A POSIX message queue fd (kinds/mqueue.ts): the queue's name (absent once unlinked),
 * attributes, owner, its messages in receive order and the mq_notify registration.
 * `ino` identifies the queue: every entry of the tree with the same one is one queue.
 */
export const mqueueEntry = z.object({
  kind: z.literal('mqueue'),
  ...streamBase,
  ino: zIno,
  name: z.string().min(1).max(255).refine((n) => !n.includes('/') && !n.includes('\0') && n !== '.' && n !== '..', 'bad queue name').optional(),
  maxmsg: z.number().int().min(1).max(65536),
  msgsize: z.number().int().min(1).max(16 << 20),
  mode: z.number().int().min(0).max(0o7777),
  uid: z.number().int().min(0).max(0xffffffff),
  gid: z.number().int().min(0).max(0xffffffff),
  /** Each message's priority and length, in the order mq_receive gives them; their bytes are `data` concatenated. */
  messages: z.array(z.object({ prio: z.number().int().min(0).max(32767), size: z.number().int().min(0).max(16 << 20) })).max(65536),
  data: payload,
  /** sigev_notify SIGEV_SIGNAL (0, with signo and value) or SIGEV_NONE (1). */
  notify: z.object({ notify: z.union([z.literal(0), z.literal(1)]), signo: z.number().int().min(0).max(64), value: zU64 }).optional(),
});

/**
 * A file lock held through fd `fd` (the first fd of its open file description in this
 * process): flock(2) and OFD locks and leases belong to the description, POSIX record
 * locks to the process's fd table. Bytes `start`..`end` inclusive; no `end`: to EOF.
 */
export const fileLock = z.object({
  kind: z.enum(['flock', 'posix', 'ofd', 'lease']),
  fd: zFd,
  type: z.enum(['read', 'write']),
  start: zBig.refine((v) => v >= 0n && v < 1n << 63n, 'expected an offset'),
  end: zBig.refine((v) => v >= 0n && v < 1n << 63n, 'expected an offset').optional(),
});

export const fdEntry = z.discriminatedUnion('kind', [
  regEntry, dirEntry, pathEntry, deletedEntry, chrEntry, inheritEntry, dupEntry, pipeEntry, fifoEntry, unixEntry, memfdEntry,
  eventfdEntry, timerfdEntry, signalfdEntry, epollEntry, inetEntry, mqueueEntry, ttyEntry, devttyEntry, netlinkEntry, ipsockEntry, packetEntry,
  inotifyEntry, pidfdEntry, fanotifyEntry,
]);

/**
 * Files in flight: passed (SCM_RIGHTS) with message `msg` of unix socket `ino`'s queue
 * (for a stream, the chunk the peek stopped at), each saved as what it is; `fd` is its
 * place in the message.
 */
export const passedFds = z.object({
  ino: zIno,
  msg: z.number().int().min(0),
  fds: z.array(fdEntry.refine((e) => e.kind !== 'dup' && e.kind !== 'inherit', 'a passed file is not a dup or an inherited fd')).min(1).max(253),
});

export const filesSchema = z
  .object({
    fds: z.array(fdEntry).max(1 << 20),
    pipes: z.array(pipeObject).max(1 << 20).optional(),
    unix: z.array(unixObject).max(1 << 20).optional(),
    locks: z.array(fileLock).max(1 << 20).optional(),
    passed: z.array(passedFds).max(1 << 20).optional(),
  })
  .superRefine((s, ctx) => {
    const seen = new Set<number>();
    for (const [i, e] of s.fds.entries()) {
      if (seen.has(e.fd)) ctx.addIssue({ code: 'custom', path: ['fds', i, 'fd'], message: `fd ${e.fd} appears twice` });
      if (e.kind === 'dup' && !(e.of < e.fd && seen.has(e.of))) {
        ctx.addIssue({ code: 'custom', path: ['fds', i, 'of'], message: `fd ${e.fd} duplicates fd ${e.of}, which is not an earlier entry` });
      }
      seen.add(e.fd);
    }
    const pipes = new Set(s.pipes?.map((p) => p.id));
    const socks = new Set(s.unix?.map((u) => u.ino));
    for (const [i, e] of s.fds.entries()) {
      const missing =
        (e.kind === 'pipe' && !pipes.has(`pipe:${e.ino}`)) ||
        (e.kind === 'fifo' && !pipes.has(`fifo:${e.dev}:${e.ino}`)) ||
        (e.kind === 'unix' && !socks.has(e.ino));
      if (missing) ctx.addIssue({ code: 'custom', path: ['fds', i, 'ino'], message: `fd ${e.fd}: its ${e.kind} object is not saved` });
    }
    for (const [i, e] of s.fds.entries()) {
      if (e.kind !== 'epoll') continue;
      const bad = e.watches.find((w) => w.via !== undefined && !seen.has(w.via));
      if (bad) ctx.addIssue({ code: 'custom', path: ['fds', i, 'watches'], message: `an epoll watch is restored through fd ${bad.via}, which is not saved` });
    }
    for (const [i, l] of (s.locks ?? []).entries()) {
      if (!seen.has(l.fd)) ctx.addIssue({ code: 'custom', path: ['locks', i, 'fd'], message: `a lock is held through fd ${l.fd}, which is not saved` });
      if (l.end !== undefined && l.end < l.start) ctx.addIssue({ code: 'custom', path: ['locks', i, 'end'], message: `a lock ends before it starts` });
    }
    for (const [i, u] of (s.unix ?? []).entries()) {
      if (u.senders !== undefined && u.senders.length !== u.lengths.length) {
        ctx.addIssue({ code: 'custom', path: ['unix', i, 'senders'], message: `socket ${u.ino}: not one sender per message` });
      }
      if (u.lengths.reduce((a, b) => a + b, 0) !== u.data.size) {
        ctx.addIssue({ code: 'custom', path: ['unix', i, 'lengths'], message: `socket ${u.ino}: message lengths do not add up to its data` });
      }
    }
  });

export type FdEntry = z.output<typeof fdEntry>;
export type FdKindName = FdEntry['kind'];
export type EntryOf<K extends FdKindName> = Extract<FdEntry, { kind: K }>;
export type PipeObject = z.output<typeof pipeObject>;
export type UnixObject = z.output<typeof unixObject>;
export type UnixFile = z.output<typeof unixFile>;
export type PassedFds = z.output<typeof passedFds>;
export type Payload = z.output<typeof payload>;
export type EpollWatch = z.output<typeof epollWatch>;
export type InotifyWatch = z.output<typeof inotifyWatch>;
export type FanotifyMark = z.output<typeof fanotifyMark>;
export type SockOpt = z.output<typeof sockOpt>;
export type TcpRepairState = z.output<typeof tcpRepairState>;
export type FilesState = z.output<typeof filesSchema>;
export type FileLock = z.output<typeof fileLock>;
export type FdOwner = z.output<typeof fdOwner>;
export type McastMembership = z.output<typeof mcastMembership>;
export type RemovedNode = z.output<typeof removedNode>;
export type SavedHandle = z.output<typeof fileHandle>;
export type FileIdentity = z.output<typeof fileIdentity>;
