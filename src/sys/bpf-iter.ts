/**
 * Reading fields of our own fds that no syscall shows, with a BPF file iterator
 * (`iter/task_file` over ckpt's own fds): IP_MULTICAST_IF's interface index
 * (`inet_sock.mc_index`; getsockopt gives only `mc_addr`), TCP's urgent pointer
 * (`tcp_sock.snd_up`), a reuseport group's BPF program, an inode's state (whether an
 * O_TMPFILE file may still be linked). The program walks from the struct file along
 * pointers (file → socket → sock, file → inode) with bpf_probe_read_kernel at offsets
 * the caller takes from the kernel's BTF (proc/btf.ts) and writes one record per fd:
 * the fd, then `len` bytes from offset `from` of the struct the walk ends at.
 * It needs CAP_BPF and CAP_PERFMON (root), BTF and Linux 6.1 (an iterator limited to one
 * process); without them it answers undefined and the caller falls back.
 */
import { readSync } from 'node:fs';
import { call } from './call.js';
import { addressOf } from './native.js';
import { closeFd } from './process.js';

const NR_BPF = 321;
const CMD = { PROG_LOAD: 5, LINK_CREATE: 28, ITER_CREATE: 33 } as const;
const PROG_TYPE_TRACING = 26;
const TRACE_ITER = 28;
const HELPER = { probeReadKernel: 113, seqWrite: 127 } as const;

/** Where the walk goes, in bytes: the iterator's context, struct file, struct socket. */
export interface SockIterLayout {
  /** BTF id of the function `bpf_iter_task_file` (the iterator the program attaches to). */
  target: number;
  ctxFd: number;
  ctxFile: number;
  filePrivate: number;
  socketSk: number;
}

/** `len` bytes (1-32) of the struct sock (or the struct that begins with it) from offset `from`. */
export interface SockBytes extends SockIterLayout {
  from: number;
  len: number;
}

/**
 * A walk from an fd's struct file along pointers: `path[0]` is the offset of a pointer in
 * struct file, each next one the offset of a pointer in the struct the previous one led
 * to; then `len` bytes (1-32) from offset `from` of the last struct. A NULL pointer on
 * the way reads as `len` zero bytes.
 */
export interface FileWalk {
  target: number;
  ctxFd: number;
  ctxFile: number;
  path: readonly number[];
  from: number;
  len: number;
}

/** The same walk, to struct inet_sock's IP_MULTICAST_IF fields. */
export interface MulticastIfLayout extends SockIterLayout {
  mcIndex: number;
  mcAddr: number;
}

type Insn = [op: number, dst: number, src: number, off: number, imm: number];
/** An instruction whose jump offset is a label, resolved once the program is laid out. */
type Jump = [op: number, dst: number, label: 'write' | 'out'];

const MAX_BYTES = 32;
const roundUp8 = (n: number) => (n + 7) & ~7;

function program(w: FileWalk): Buffer {
  const size = roundUp8(4 + w.len);
  // Stack: a pointer at fp-8, below it the record (fd, then the bytes), zeroed first.
  const rec = -(8 + size);
  const body: (Insn | Jump)[] = [
    [0xbf, 6, 1, 0, 0], // r6 = ctx
    [0x79, 7, 6, w.ctxFile, 0], // r7 = ctx->file
    [0x15, 7, 'out'], // if !file goto out
  ];
  for (let k = 0; k < size; k += 8) body.push([0x7a, 10, 0, rec + k, 0]); // record[k..k+8] = 0
  body.push(
    [0x61, 8, 6, w.ctxFd, 0], // r8 = ctx->fd
    [0x63, 10, 8, rec, 0], // record.fd = fd
    [0x79, 3, 7, w.path[0]!, 0], // r3 = *(file + path[0])
    [0x15, 3, 'write'], // NULL: zero bytes
  );
  const read = (into: number, len: number): (Insn | Jump)[] => [
    [0xbf, 1, 10, 0, 0],
    [0x07, 1, 0, 0, into], // r1 = fp + into
    [0xb7, 2, 0, 0, len], // r2 = len; r3 = the source
    [0x85, 0, 0, 0, HELPER.probeReadKernel],
    [0x55, 0, 'out'], // if failed goto out
  ];
  for (const off of w.path.slice(1)) {
    body.push([0x07, 3, 0, 0, off], ...read(-8, 8), [0x79, 3, 10, -8, 0], [0x15, 3, 'write']); // r3 = *(r3 + off)
  }
  body.push([0x07, 3, 0, 0, w.from], ...read(rec + 4, w.len));
  const write = body.length;
  body.push(
    [0x79, 1, 6, 0, 0], // r1 = ctx->meta
    [0x79, 1, 1, 0, 0], // r1 = meta->seq
    [0xbf, 2, 10, 0, 0],
    [0x07, 2, 0, 0, rec], // r2 = &record
    [0xb7, 3, 0, 0, 4 + w.len],
    [0x85, 0, 0, 0, HELPER.seqWrite],
  );
  const out = body.length;
  body.push([0xb7, 0, 0, 0, 0], [0x95, 0, 0, 0, 0]); // out: return 0
  const ins: Insn[] = body.map((x, i) => (x.length === 3 ? [x[0], x[1], 0, (x[2] === 'out' ? out : write) - i - 1, 0] : x));
  const code = Buffer.alloc(8 * ins.length);
  ins.forEach(([op, dst, src, off, imm], i) => {
    code.writeUInt8(op, 8 * i);
    code.writeUInt8((src << 4) | dst, 8 * i + 1);
    code.writeInt16LE(off, 8 * i + 2);
    code.writeInt32LE(imm, 8 * i + 4);
  });
  return code;
}

const bpf = (cmd: number, attr: Buffer, name: string) => Number(call(NR_BPF, [cmd, addressOf(attr), attr.length], { name }));

/** Loaded programs by what they read (null: the load failed). */
const loaded = new Map<string, number | null>();

function loadProgram(l: FileWalk): number | undefined {
  const key = `${l.path.join(',')}:${l.from}:${l.len}`;
  const known = loaded.get(key);
  if (known !== undefined) return known ?? undefined;
  loaded.set(key, null);
  if (l.len < 1 || l.len > MAX_BYTES) return undefined;
  const code = program(l);
  const license = Buffer.from('GPL\0');
  const a = Buffer.alloc(128);
  a.writeUInt32LE(PROG_TYPE_TRACING, 0);
  a.writeUInt32LE(code.length / 8, 4);
  a.writeBigUInt64LE(addressOf(code), 8);
  a.writeBigUInt64LE(addressOf(license), 16);
  a.writeUInt32LE(TRACE_ITER, 68);
  a.writeUInt32LE(l.target, 108);
  let fd: number;
  try {
    fd = bpf(CMD.PROG_LOAD, a, 'bpf(BPF_PROG_LOAD)');
  } catch {
    return undefined; // no BPF for us here (capabilities, kernel): the caller falls back
  }
  void code;
  loaded.set(key, fd);
  return fd;
}

/**
 * IP_MULTICAST_IF of our socket `fd` as the kernel holds it: the interface index and the
 * address (network order, as getsockopt gives it); undefined when it cannot be read.
 */
export function readMulticastIf(fd: number, layout: MulticastIfLayout): { ifindex: number; addr: Buffer } | undefined {
  if (Math.abs(layout.mcIndex - layout.mcAddr) !== 4) return undefined;
  const from = Math.min(layout.mcIndex, layout.mcAddr);
  const b = readSockBytes(fd, { ...layout, from, len: 8 });
  if (!b) return undefined;
  return { ifindex: b.readInt32LE(layout.mcIndex - from), addr: Buffer.from(b.subarray(layout.mcAddr - from, layout.mcAddr - from + 4)) };
}

/** `layout.len` bytes of the sock behind our socket `fd` from `layout.from`; undefined when they cannot be read. */
export function readSockBytes(fd: number, layout: SockBytes): Buffer | undefined {
  return readFileBytes(fd, { ...layout, path: [layout.filePrivate, layout.socketSk] });
}

/** `layout.len` bytes at the end of walk `layout` from our fd `fd`'s struct file; undefined when they cannot be read. */
export function readFileBytes(fd: number, layout: FileWalk): Buffer | undefined {
  // CKPT_BPF_ITER=off: as on a host where the iterator cannot run (tests of the refusals that follow).
  if (layout.path.length < 1 || process.env['CKPT_BPF_ITER'] === 'off') return undefined;
  const prog = loadProgram(layout);
  if (prog === undefined) return undefined;
  const info = Buffer.alloc(16);
  info.writeUInt32LE(process.pid, 4); // bpf_iter_link_info.task.pid: our fds only
  const l = Buffer.alloc(64);
  l.writeUInt32LE(prog, 0);
  l.writeUInt32LE(TRACE_ITER, 8);
  l.writeBigUInt64LE(addressOf(info), 16);
  l.writeUInt32LE(info.length, 24);
  let link: number;
  try {
    link = bpf(CMD.LINK_CREATE, l, 'bpf(BPF_LINK_CREATE)');
  } catch {
    return undefined;
  }
  try {
    const c = Buffer.alloc(16);
    c.writeUInt32LE(link, 0);
    const it = bpf(CMD.ITER_CREATE, c, 'bpf(BPF_ITER_CREATE)');
    try {
      const parts: Buffer[] = [];
      for (;;) {
        const buf = Buffer.alloc(1 << 16);
        const n = readSync(it, buf);
        if (n <= 0) break;
        parts.push(buf.subarray(0, n));
      }
      const out = Buffer.concat(parts);
      const size = 4 + layout.len;
      for (let i = 0; i + size <= out.length; i += size) {
        if (out.readUInt32LE(i) === fd) return Buffer.from(out.subarray(i + 4, i + size));
      }
      return undefined;
    } finally {
      closeFd(it);
    }
  } finally {
    closeFd(link);
  }
}
