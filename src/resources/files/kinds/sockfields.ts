/**
 * Fields of sockets and files no syscall shows, read with the BPF file iterator of
 * sys/bpf-iter.ts at offsets from this kernel's BTF: where the walk file → socket → sock
 * goes, TCP's urgent pointer, a reuseport group's BPF program, whether an O_TMPFILE
 * inode may still be linked. Without BTF, BPF or the capabilities they answer undefined.
 */
import { BTF_KIND, kernelBtf } from '../../../proc/index.js';
import { readFileBytes, readSockBytes, type SockIterLayout } from '../../../sys/bpf-iter.js';

let walk: SockIterLayout | null | undefined;

/** Offset of `field` in struct `struct` of this kernel, from BTF. */
export function btfOffset(struct: string, field: string): number | undefined {
  const btf = kernelBtf();
  const id = btf?.find(BTF_KIND.STRUCT, struct);
  return btf && id !== undefined ? btf.offsetOf(id, field) : undefined;
}

/** The iterator's walk from an fd to its struct sock, or undefined without BTF. */
export function sockIterLayout(): SockIterLayout | undefined {
  if (walk !== undefined) return walk ?? undefined;
  walk = null;
  const target = kernelBtf()?.find(BTF_KIND.FUNC, 'bpf_iter_task_file');
  const l = {
    target,
    ctxFd: btfOffset('bpf_iter__task_file', 'fd'),
    ctxFile: btfOffset('bpf_iter__task_file', 'file'),
    filePrivate: btfOffset('file', 'private_data'),
    socketSk: btfOffset('socket', 'sk'),
  };
  if (Object.values(l).some((v) => v === undefined)) return undefined;
  walk = l as SockIterLayout;
  return walk;
}

/**
 * Whether TCP socket `fd` (ours) sent urgent data (MSG_OOB) the peer has not
 * acknowledged: `tcp_sock.snd_up` ahead of `snd_una` (the kernel moves snd_up along with
 * snd_una once the urgent byte is acknowledged). Undefined when it cannot be read.
 */
export function urgentUnacked(fd: number): boolean | undefined {
  const l = sockIterLayout();
  const una = btfOffset('tcp_sock', 'snd_una');
  const up = btfOffset('tcp_sock', 'snd_up');
  if (!l || una === undefined || up === undefined) return undefined;
  const from = Math.min(una, up);
  const b = readSockBytes(fd, { ...l, from, len: Math.max(una, up) + 4 - from });
  return b && b.readUInt32LE(up - from) !== b.readUInt32LE(una - from);
}

/**
 * Whether the SO_REUSEPORT group of socket `fd` (ours) has a BPF program choosing its
 * socket (SO_ATTACH_REUSEPORT_CBPF/EBPF: `sk->sk_reuseport_cb->prog`, which no
 * getsockopt reads). Undefined when it cannot be read.
 */
export function reuseportProgAttached(fd: number): boolean | undefined {
  const l = sockIterLayout();
  const cb = btfOffset('sock', 'sk_reuseport_cb');
  const prog = btfOffset('sock_reuseport', 'prog');
  if (!l || cb === undefined || prog === undefined) return undefined;
  const b = readFileBytes(fd, { ...l, path: [l.filePrivate, l.socketSk, cb], from: prog, len: 8 });
  return b && b.readBigUInt64LE(0) !== 0n;
}

/** I_LINKABLE in inode->i_state: an enumerator in the BTF of 6.18 on, (1 << 10) since it came (3.11) before that. */
const I_LINKABLE_BEFORE_ENUM = 1 << 10;

/**
 * Whether the nameless inode behind our fd `fd` may still be given a name with linkat
 * (`I_LINKABLE`: an O_TMPFILE file made without O_EXCL and never linked since; O_EXCL
 * leaves no trace in f_flags). Undefined when it cannot be read.
 */
export function inodeLinkable(fd: number): boolean | undefined {
  const btf = kernelBtf();
  const target = btf?.find(BTF_KIND.FUNC, 'bpf_iter_task_file');
  const ctxFd = btfOffset('bpf_iter__task_file', 'fd');
  const ctxFile = btfOffset('bpf_iter__task_file', 'file');
  const fInode = btfOffset('file', 'f_inode');
  const iState = btfOffset('inode', 'i_state');
  if (!btf || target === undefined || ctxFd === undefined || ctxFile === undefined || fInode === undefined || iState === undefined) return undefined;
  const bit = btf.enumValue('I_LINKABLE') ?? I_LINKABLE_BEFORE_ENUM;
  // i_state is an unsigned long before 6.18 and a 32-bit enum since: the low 4 bytes (little-endian) hold it either way.
  const b = readFileBytes(fd, { target, ctxFd, ctxFile, path: [fInode], from: iState, len: 4 });
  return b && (b.readUInt32LE(0) & bit) !== 0;
}
