/**
 * The fd kind registry, as data: dump picks the first rule whose `match` accepts the
 * fd's facts; restore looks an entry's kind up in REOPENERS. A new kind (eventfd,
 * inet sockets…) plugs in by adding a reopener and replacing its "unsupported"
 * rule, without touching the dump or restore loops.
 */
import { isBlk, isChr, isDir, isFifo, isReg, type FdFacts } from './facts.js';
import { charDeviceReopener, dumpCharDevice } from './kinds/device.js';
import { deletedReopener, dumpDeleted } from './kinds/deleted.js';
import { dumpInherit, isTty } from './kinds/inherit.js';
import type { DumpFn, Reopener, ReopenKind } from './kinds/kind.js';
import { dumpFifo, dumpPipe, fifoReopener, pipeReopener } from './kinds/pipe.js';
import { dumpUnix, unixReopener } from './kinds/unix.js';
import { dumpInet, inetReopener, isInetSocket } from './kinds/inet.js';
import { dumpMemfd, memfdReopener } from './kinds/memfd.js';
import { directoryReopener, dumpDirectory, dumpOtherLink, dumpRegular, regularReopener } from './kinds/regular.js';
import { nameGone } from './nameless.js';
import { anonName, unsupported } from './kinds/unsupported.js';
import { dumpEventfd, eventfdReopener } from './kinds/eventfd.js';
import { dumpTimerfd, timerfdReopener } from './kinds/timerfd.js';
import { dumpSignalfd, signalfdReopener } from './kinds/signalfd.js';
import { dumpEpoll, epollReopener } from './kinds/epoll.js';
import { dumpMqueue, isMqueue, mqueueReopener } from './kinds/mqueue.js';
import { devttyReopener, dumpDevTty, dumpPtyMaster, dumpPtySlave, isDevTty, cttyInTree, isPtyMaster, isTreeSlave, ptyReopener, refuseTerminal } from './kinds/tty.js';
import { dumpNetlink, isNetlinkSocket, netlinkReopener } from './kinds/netlink.js';
import { dumpIpSocket, ipSocketReopener, isIpSocket } from './kinds/ipsock.js';
import { dumpPacket, isPacketSocket, packetReopener } from './kinds/packet.js';
import { isOtherSocket, sockProto } from './kinds/sockproto.js';
import { dumpInotify, inotifyReopener } from './kinds/inotify.js';
import { dumpPidfd, pidfdReopener } from './kinds/pidfd.js';
import { dumpFanotify, fanotifyReopener } from './kinds/fanotify.js';
import { refuse, REFUSALS } from './kinds/refused.js';
import { isPathOnly } from './flags.js';
import { dumpPathOnly, pathOnlyReopener } from './kinds/pathonly.js';

export interface FdRule {
  /** Stable name, for tests and messages. */
  name: string;
  /** The entry kind the rule saves, or 'unsupported' when its dump refuses. */
  kind: ReopenKind | 'inherit' | 'unsupported';
  match(f: FdFacts): boolean;
  dump: DumpFn;
}

const isPath = (f: FdFacts) => f.link.startsWith('/');
const isMemfd = (f: FdFacts) => f.link.startsWith('/memfd:');
/** `anon_inode:[name]`, the link of an eventfd, timerfd, signalfd, epoll… */
const isAnon = (name: string) => (f: FdFacts) => f.link === `anon_inode:[${name}]`;
/** The standard descriptors may be inherited from the restorer when they cannot be reopened. */
const isStd = (f: FdFacts) => f.fd <= 2;

export const RULES: readonly FdRule[] = [
  // A POSIX message queue is a regular file of the mqueue fs: before the path rules.
  { name: 'mqueue', kind: 'mqueue', dump: dumpMqueue, match: isMqueue },
  {
    // This name was unlinked while another link lives on: the same file, reopened by handle.
    name: 'other-link', kind: 'reg', dump: dumpOtherLink,
    match: (f) => isPath(f) && isReg(f.stat) && !isMemfd(f) && f.stat.nlink > 0 && nameGone(f),
  },
  // No name left (nlink 0): the content is saved.
  { name: 'deleted', kind: 'deleted', dump: dumpDeleted, match: (f) => isPath(f) && isReg(f.stat) && !isMemfd(f) && f.stat.nlink === 0 },
  { name: 'regular', kind: 'reg', dump: dumpRegular, match: (f) => isPath(f) && isReg(f.stat) && !isMemfd(f) },
  { name: 'directory', kind: 'dir', dump: dumpDirectory, match: (f) => isPath(f) && isDir(f.stat) },
  // An O_PATH fd on anything else only names its inode: no pipe buffer, tty or driver behind it.
  { name: 'o-path', kind: 'path', dump: dumpPathOnly, match: (f) => isPath(f) && isPathOnly(f.flags) },
  // A pty pair whose master the tree holds is the tree's, on any fd; so is /dev/tty naming it.
  { name: 'pty-master', kind: 'tty', dump: dumpPtyMaster, match: isPtyMaster },
  { name: 'pty-slave', kind: 'tty', dump: dumpPtySlave, match: isTreeSlave },
  { name: 'dev-tty', kind: 'devtty', dump: dumpDevTty, match: (f) => isDevTty(f) && (!isStd(f) || cttyInTree(f)) },
  { name: 'std-tty', kind: 'inherit', dump: dumpInherit, match: (f) => isStd(f) && isChr(f.stat) && isTty(f) },
  { name: 'tty', kind: 'unsupported', dump: refuseTerminal, match: (f) => isChr(f.stat) && isTty(f) },
  { name: 'char-device', kind: 'chr', dump: dumpCharDevice, match: (f) => isPath(f) && isChr(f.stat) },
  // A pipe on a standard fd whose other end is in the tree (a shell pipeline), or held by
  // nobody any more (a pager's input once its writer exited), is part of the tree.
  { name: 'std-pipe', kind: 'pipe', dump: dumpPipe, match: (f) => isStd(f) && f.link.startsWith('pipe:') && (f.inTree === true || f.otherEndGone === true) },
  // A FIFO is reopened by its path, whoever holds its other end.
  { name: 'std-fifo', kind: 'fifo', dump: dumpFifo, match: (f) => isStd(f) && isPath(f) && isFifo(f.stat) },
  { name: 'std-other', kind: 'inherit', dump: dumpInherit, match: isStd },
  { name: 'pipe', kind: 'pipe', dump: dumpPipe, match: (f) => f.link.startsWith('pipe:') },
  { name: 'inet', kind: 'inet', dump: dumpInet, match: isInetSocket },
  { name: 'netlink', kind: 'netlink', dump: dumpNetlink, match: isNetlinkSocket },
  // ping, UDP-Lite and raw IP sockets
  { name: 'ipsock', kind: 'ipsock', dump: dumpIpSocket, match: isIpSocket },
  { name: 'packet', kind: 'packet', dump: dumpPacket, match: isPacketSocket },
  // MPTCP, SCTP, vsock, XDP, AF_ALG, Bluetooth, CAN…
  { name: 'socket-other', kind: 'unsupported', dump: unsupported((f) => `${sockProto(f)} sockets`), match: isOtherSocket },
  // Unix socketpairs; other sockets are refused by dumpUnix, which knows which they are.
  { name: 'socket', kind: 'unix', dump: dumpUnix, match: (f) => f.link.startsWith('socket:') },
  { name: 'fifo', kind: 'fifo', dump: dumpFifo, match: (f) => isPath(f) && isFifo(f.stat) },
  { name: 'memfd', kind: 'memfd', dump: dumpMemfd, match: isMemfd },
  { name: 'eventfd', kind: 'eventfd', dump: dumpEventfd, match: isAnon('eventfd') },
  { name: 'timerfd', kind: 'timerfd', dump: dumpTimerfd, match: isAnon('timerfd') },
  { name: 'signalfd', kind: 'signalfd', dump: dumpSignalfd, match: isAnon('signalfd') },
  { name: 'epoll', kind: 'epoll', dump: dumpEpoll, match: isAnon('eventpoll') },
  // Its link has no brackets: anon_inode:inotify.
  { name: 'inotify', kind: 'inotify', dump: dumpInotify, match: (f) => f.link === 'anon_inode:inotify' },
  { name: 'pidfd', kind: 'pidfd', dump: dumpPidfd, match: isAnon('pidfd') },
  { name: 'fanotify', kind: 'fanotify', dump: dumpFanotify, match: isAnon('fanotify') },
  // userfaultfd, io_uring, bpf, perf_event…: refused, each saying why.
  ...REFUSALS.map((r) => ({ name: r.what, kind: 'unsupported' as const, dump: refuse(r), match: r.match })),
  // Kinds not met yet.
  { name: 'anon-inode', kind: 'unsupported', dump: unsupported(anonName), match: (f) => f.link.startsWith('anon_inode:') },
  { name: 'block-device', kind: 'unsupported', dump: unsupported('block devices'), match: (f) => isBlk(f.stat) },
  { name: 'other', kind: 'unsupported', dump: unsupported('files of this kind'), match: () => true },
];

export function chooseRule(f: FdFacts): FdRule {
  // The last rule matches everything, so find() cannot miss.
  return RULES.find((r) => r.match(f))!;
}

export const REOPENERS: { [K in ReopenKind]: Reopener<K> } = {
  reg: regularReopener,
  dir: directoryReopener,
  path: pathOnlyReopener,
  deleted: deletedReopener,
  chr: charDeviceReopener,
  pipe: pipeReopener,
  fifo: fifoReopener,
  unix: unixReopener,
  memfd: memfdReopener,
  eventfd: eventfdReopener,
  timerfd: timerfdReopener,
  signalfd: signalfdReopener,
  epoll: epollReopener,
  inet: inetReopener,
  mqueue: mqueueReopener,
  tty: ptyReopener,
  devtty: devttyReopener,
  netlink: netlinkReopener,
  ipsock: ipSocketReopener,
  packet: packetReopener,
  inotify: inotifyReopener,
  pidfd: pidfdReopener,
  fanotify: fanotifyReopener,
};
