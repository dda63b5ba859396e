/**
 * The blank process a restore starts from: a ~170-byte static ELF, generated here, that
 * loops on pause(). It has no libc (so no rseq registration, no TLS, no heap) and its
 * one page of code sits at 0x10000, far from where programs live. It is executed from
 * a memfd, so restore needs no compiler and writes no executable file.
 *
 * The `syscall` instruction in its loop is where the first injected syscalls run.
 */
import { readlinkSync } from 'node:fs';
import { CkptError } from '../common/errors.js';
import { readStat } from '../proc/index.js';
import { addressOf, call, collectExit, kill, NR, PR, SIG, spawnQuiet, wait4, WAIT } from '../sys/index.js';
import { sleepSync } from '../infect/index.js';

export const BLANK_BASE = 0x10000n;
const HEADER = 64 + 56;
/**
 * First, so that the blank can never outlive a killed ckpt (issue 9): it asks for
 * SIGKILL when its parent dies, then exits if its parent is already gone (it was
 * reparented: getppid() is no longer the ckpt that started it). After the prctl a
 * later death of ckpt kills it; before it, getppid() tells. Then it loops on pause().
 */
function blankCode(parent: number): { code: Buffer; syscallAt: number } {
  const imm = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeInt32LE(n);
    return [...b];
  };
  const code = Buffer.from([
    0xb8, ...imm(NR.prctl), 0xbf, ...imm(PR.SET_PDEATHSIG), 0xbe, ...imm(SIG.SIGKILL), 0x0f, 0x05, // prctl(PR_SET_PDEATHSIG, SIGKILL)
    0xb8, ...imm(NR.getppid), 0x0f, 0x05, // getppid()
    0x3d, ...imm(parent), // cmp eax, parent
    0x75, 0x09, // jne exit
    0xb8, ...imm(NR.pause), 0x0f, 0x05, 0xeb, 0xf7, // loop: pause(); jmp loop
    0xb8, ...imm(NR.exit_group), 0xbf, ...imm(1), 0x0f, 0x05, // exit: exit_group(1)
  ]);
  return { code, syscallAt: code.indexOf(Buffer.from([0x0f, 0x05, 0xeb])) };
}
/** Address of the `syscall` instruction of the blank's pause loop, where the first injected calls run. */
export const BLANK_SYSCALL_SITE = BLANK_BASE + BigInt(HEADER + blankCode(1).syscallAt);
export const BLANK_NAME = 'ckpt-blank';

/** The blank's executable, for a blank whose parent is process `parent`. */
export function blankElf(parent: number): Buffer {
  const { code } = blankCode(parent);
  const size = HEADER + code.length;
  const b = Buffer.alloc(size);
  Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]).copy(b, 0); // ELF64, little endian, SysV
  b.writeUInt16LE(2, 16); // ET_EXEC
  b.writeUInt16LE(62, 18); // EM_X86_64
  b.writeUInt32LE(1, 20);
  b.writeBigUInt64LE(BLANK_BASE + BigInt(HEADER), 24); // e_entry
  b.writeBigUInt64LE(64n, 32); // e_phoff
  b.writeUInt16LE(64, 52); // e_ehsize
  b.writeUInt16LE(56, 54); // e_phentsize
  b.writeUInt16LE(1, 56); // e_phnum
  const ph = 64;
  b.writeUInt32LE(1, ph); // PT_LOAD
  b.writeUInt32LE(5, ph + 4); // PF_R | PF_X
  b.writeBigUInt64LE(0n, ph + 8); // p_offset
  b.writeBigUInt64LE(BLANK_BASE, ph + 16); // p_vaddr
  b.writeBigUInt64LE(BLANK_BASE, ph + 24); // p_paddr
  b.writeBigUInt64LE(BigInt(size), ph + 32); // p_filesz
  b.writeBigUInt64LE(BigInt(size), ph + 40); // p_memsz
  b.writeBigUInt64LE(0x1000n, ph + 48); // p_align
  code.copy(b, HEADER);
  return b;
}

let memfd = -1;

function blankMemfd(): number {
  if (memfd >= 0) return memfd;
  const name = Buffer.from(`${BLANK_NAME}\0`);
  const fd = Number(call(NR.memfd_create, [addressOf(name), 0x1 /* MFD_CLOEXEC */], { name: 'memfd_create' }));
  const elf = blankElf(process.pid);
  call(NR.write, [fd, addressOf(elf), elf.length], { name: 'write(blank memfd)' });
  memfd = fd;
  return fd;
}

export interface Blank {
  pid: number;
}

/**
 * Starts a blank process and returns once it runs the blank code (seizing earlier
 * would catch the pre-exec copy of Node). It holds none of our fds (/dev/null on
 * 0-2), so a killed restore leaves nothing that keeps our stdout open; the restored
 * processes take our standard fds from us (files/kinds/inherit.ts).
 */
export function startBlank(opts: { timeoutMs?: number } = {}): Blank {
  const path = `/proc/${process.pid}/fd/${blankMemfd()}`;
  let pid: number;
  try {
    pid = spawnQuiet(path, [BLANK_NAME]);
  } catch (e) {
    throw new CkptError('INTERNAL', `Cannot start the blank process for restore: ${(e as Error).message}`, { cause: e });
  }
  const deadline = Date.now() + (opts.timeoutMs ?? 5000);
  for (;;) {
    try {
      if (readlinkSync(`/proc/${pid}/exe`).startsWith(`/memfd:${BLANK_NAME}`) && readStat(pid).state === 'S') return { pid };
    } catch {
      // not there yet, or exec failed
    }
    const exited = wait4(pid, WAIT.NOHANG).kind !== 'none';
    if (exited || Date.now() > deadline) {
      if (!exited) reapBlank(pid);
      throw new CkptError('INTERNAL', `Cannot start the blank process for restore (pid ${pid}): it did not start`);
    }
    sleepSync(0.2);
  }
}

/**
 * Kills the blank and collects its exit: it is our child (spawnQuiet), and Node, which
 * does not know it, would leave it a zombie. A traced blank is released first.
 */
export function reapBlank(pid: number): void {
  try {
    kill(pid, SIG.SIGKILL);
  } catch {
    // gone already: collected below, or before
  }
  collectExit(pid);
}
