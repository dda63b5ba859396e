/**
 * Reading fields of our own sockets that no getsockopt shows, with a BPF file iterator
 * (`iter/task_file` over ckpt's own fds): IP_MULTICAST_IF's interface index
 * (`inet_sock.mc_index`; getsockopt gives only `mc_addr`), TCP's urgent pointer
 * (`tcp_sock.snd_up`). The program walks file → socket → sock with
 * bpf_probe_read_kernel at offsets the caller takes from the kernel's BTF (proc/btf.ts)
 * and writes one record per fd: the fd, then `len` bytes of the sock from offset `from`.
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

/** The same walk, to struct inet_sock's IP_MULTICAST_IF fields. */
export interface MulticastIfLayout extends SockIterLayout {
  mcIndex: number;
  mcAddr: number;
}

type Insn = [op: number, dst: number, src: number, off: number, imm: number];

const MAX_BYTES = 32;
const roundUp8 = (n: number) => (n + 7) & ~7;

function program(l: SockBytes): Buffer {
  const first = l.from;
  // Stack: the sock pointer at fp-8, below it the record (fd, then the bytes).
  const rec = -(8 + roundUp8(4 + l.len));
  const OUT = 25;
  const jump = (i: number) => OUT - i - 1;
  const ins: Insn[] = [
    [0xbf, 6, 1, 0, 0], // 0: r6 = ctx
    [0x79, 7, 6, l.ctxFile, 0], // 1: r7 = ctx->file
    [0x15, 7, 0, jump(2), 0], // 2: if !file goto out
    [0x61, 8, 6, l.ctxFd, 0], // 3: r8 = ctx->fd
    [0x63, 10, 8, rec, 0], // 4: record.fd = fd
    [0x79, 3, 7, l.filePrivate, 0], // 5: r3 = file->private_data (struct socket *)
    [0x07, 3, 0, 0, l.socketSk], // 6: r3 = &socket->sk
    [0xbf, 1, 10, 0, 0], // 7
    [0x07, 1, 0, 0, -8], // 8: r1 = fp - 8
    [0xb7, 2, 0, 0, 8], // 9
    [0x85, 0, 0, 0, HELPER.probeReadKernel], // 10: *(fp-8) = socket->sk
    [0x55, 0, 0, jump(11), 0], // 11: if failed goto out
    [0x79, 3, 10, -8, 0], // 12: r3 = sk
    [0x07, 3, 0, 0, first], // 13: r3 = (char *)sk + from
    [0xbf, 1, 10, 0, 0], // 14
    [0x07, 1, 0, 0, rec + 4], // 15: r1 = record.bytes
    [0xb7, 2, 0, 0, l.len], // 16
    [0x85, 0, 0, 0, HELPER.probeReadKernel], // 17
    [0x55, 0, 0, jump(18), 0], // 18
    [0x79, 1, 6, 0, 0], // 19: r1 = ctx->meta
    [0x79, 1, 1, 0, 0], // 20: r1 = meta->seq
    [0xbf, 2, 10, 0, 0], // 21
    [0x07, 2, 0, 0, rec], // 22: r2 = &record
    [0xb7, 3, 0, 0, 4 + l.len], // 23
    [0x85, 0, 0, 0, HELPER.seqWrite], // 24
    [0xb7, 0, 0, 0, 0], // 25 (out): return 0
    [0x95, 0, 0, 0, 0], // 26
  ];
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

function loadProgram(l: SockBytes): number | undefined {
  const key = `${l.from}:${l.len}`;
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
