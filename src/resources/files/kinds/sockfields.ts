/**
 * Socket fields no getsockopt shows, read with the BPF file iterator of sys/bpf-iter.ts
 * at offsets from this kernel's BTF: where the walk file → socket → sock goes, and TCP's
 * urgent pointer. Without BTF, BPF or the capabilities they answer undefined.
 */
import { BTF_KIND, kernelBtf } from '../../../proc/index.js';
import { readSockBytes, type SockIterLayout } from '../../../sys/bpf-iter.js';

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
