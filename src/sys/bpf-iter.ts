/**
 * Reading a field of our own sockets that no getsockopt shows, with a BPF file iterator
 * (`iter/task_file` over ckpt's own fds): IP_MULTICAST_IF's interface index
 * (`inet_sock.mc_index`; getsockopt gives only `mc_addr`). The program walks
 * file → socket → sock with bpf_probe_read_kernel at offsets the caller takes from the
 * kernel's BTF (proc/btf.ts) and writes one record per fd: fd, mc_index, mc_addr.
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

/** Where the fields are, in bytes: the iterator's context, struct file, struct socket, struct inet_sock. */
export interface MulticastIfLayout {
  /** BTF id of the function `bpf_iter_task_file` (the iterator the program attaches to). */
  target: number;
  ctxFd: number;
  ctxFile: number;
  filePrivate: number;
  socketSk: number;
  mcIndex: number;
  mcAddr: number;
}

type Insn = [op: number, dst: number, src: number, off: number, imm: number];

function program(l: MulticastIfLayout): Buffer {
  const first = Math.min(l.mcIndex, l.mcAddr);
  const OUT = 25;
  const jump = (i: number) => OUT - i - 1;
  const ins: Insn[] = [
    [0xbf, 6, 1, 0, 0], // 0: r6 = ctx
    [0x79, 7, 6, l.ctxFile, 0], // 1: r7 = ctx->file
    [0x15, 7, 0, jump(2), 0], // 2: if !file goto out
    [0x61, 8, 6, l.ctxFd, 0], // 3: r8 = ctx->fd
    [0x63, 10, 8, -24, 0], // 4: record.fd = fd
    [0x79, 3, 7, l.filePrivate, 0], // 5: r3 = file->private_data (struct socket *)
    [0x07, 3, 0, 0, l.socketSk], // 6: r3 = &socket->sk
    [0xbf, 1, 10, 0, 0], // 7
    [0x07, 1, 0, 0, -8], // 8: r1 = fp - 8
    [0xb7, 2, 0, 0, 8], // 9
    [0x85, 0, 0, 0, HELPER.probeReadKernel], // 10: *(fp-8) = socket->sk
    [0x55, 0, 0, jump(11), 0], // 11: if failed goto out
    [0x79, 3, 10, -8, 0], // 12: r3 = sk
    [0x07, 3, 0, 0, first], // 13: r3 = &inet_sk(sk)->mc_index (or mc_addr)
    [0xbf, 1, 10, 0, 0], // 14
    [0x07, 1, 0, 0, -20], // 15: r1 = fp - 20 (record.fields)
    [0xb7, 2, 0, 0, 8], // 16
    [0x85, 0, 0, 0, HELPER.probeReadKernel], // 17
    [0x55, 0, 0, jump(18), 0], // 18
    [0x79, 1, 6, 0, 0], // 19: r1 = ctx->meta
    [0x79, 1, 1, 0, 0], // 20: r1 = meta->seq
    [0xbf, 2, 10, 0, 0], // 21
    [0x07, 2, 0, 0, -24], // 22: r2 = &record
    [0xb7, 3, 0, 0, 12], // 23
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

let loaded: { layout: MulticastIfLayout; fd: number } | null | undefined;

function loadProgram(l: MulticastIfLayout): number | undefined {
  if (loaded !== undefined) return loaded?.fd;
  loaded = null;
  if (Math.abs(l.mcIndex - l.mcAddr) !== 4) return undefined;
  const code = program(l);
  const license = Buffer.from('GPL\0');
  const a = Buffer.alloc(128);
  a.writeUInt32LE(PROG_TYPE_TRACING, 0);
  a.writeUInt32LE(code.length / 8, 4);
  a.writeBigUInt64LE(addressOf(code), 8);
  a.writeBigUInt64LE(addressOf(license), 16);
  a.writeUInt32LE(TRACE_ITER, 68);
  a.writeUInt32LE(l.target, 108);
  try {
    loaded = { layout: l, fd: bpf(CMD.PROG_LOAD, a, 'bpf(BPF_PROG_LOAD)') };
  } catch {
    return undefined; // no BPF for us here (capabilities, kernel): the caller falls back
  }
  void code;
  return loaded.fd;
}

/**
 * IP_MULTICAST_IF of our socket `fd` as the kernel holds it: the interface index and the
 * address (network order, as getsockopt gives it); undefined when it cannot be read.
 */
export function readMulticastIf(fd: number, layout: MulticastIfLayout): { ifindex: number; addr: Buffer } | undefined {
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
      for (let i = 0; i + 12 <= out.length; i += 12) {
        if (out.readUInt32LE(i) !== fd) continue;
        const at = (off: number) => i + 4 + off - Math.min(layout.mcIndex, layout.mcAddr);
        return { ifindex: out.readInt32LE(at(layout.mcIndex)), addr: Buffer.from(out.subarray(at(layout.mcAddr), at(layout.mcAddr) + 4)) };
      }
      return undefined;
    } finally {
      closeFd(it);
    }
  } finally {
    closeFd(link);
  }
}
