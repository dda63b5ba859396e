/**
 * A signal frame that puts a thread back exactly as it was, for the case where ckpt
 * dies (SIGKILL, OOM) while it borrows the thread: the kernel then lets the thread run
 * on from wherever it is, with whatever registers it has. While a dump injects calls,
 * the thread's registers always point at a `mov $15, %eax; syscall` (rt_sigreturn)
 * already in its code, with rsp on this frame, so a thread left alone at any moment
 * finishes the call in progress, returns through the frame and carries on where it
 * was, with its registers, signal mask and FPU/vector state (see remote.ts).
 *
 * Layout (x86_64, arch/x86/include/asm/sigframe.h): struct rt_sigframe
 * { pretcode; ucontext uc; siginfo info; } with the xsave area after it. rt_sigreturn
 * finds the frame at rsp - 8 (as if a handler had returned with `ret`).
 */
import { signed, type Regs } from '../sys/index.js';

const UC_FLAGS = 0x1n | 0x2n | 0x4n; // UC_FP_XSTATE | UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS
const UC_STACK = 24;
const MCONTEXT = 48;
const SIGMASK = 304;
/** The xsave area starts here, 64-byte aligned (xrstor needs it). */
const FPSTATE = 512;
const FP_XSTATE_MAGIC1 = 0x46505853;
const FP_XSTATE_MAGIC2 = 0x46505845;
/** fxsave's sw_reserved bytes: ptrace puts the XCR0 mask there, a signal frame struct _fpx_sw_bytes. */
const SW_BYTES = 464;

/** sigcontext_64 order: r8 … r15, rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip, eflags. */
const SIGCONTEXT_REGS = ['r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'rdi', 'rsi', 'rbp', 'rbx', 'rdx', 'rax', 'rcx', 'rsp', 'rip', 'eflags'] as const;

/** `mov $15, %rax; syscall` and `mov $15, %eax; syscall`: glibc's and musl's __restore_rt, Go's sigreturn. */
export const SIGRETURN_GADGETS = [Buffer.from('48c7c00f0000000f05', 'hex'), Buffer.from('b80f0000000f05', 'hex')];

/** `syscall; ret`: a libc wrapper such as getpid's ends so. */
export const SYSCALL_RET = Buffer.from('0f05c3', 'hex');

/** The kernel's syscall restart codes (include/linux/errno.h), as rax holds them. */
export const RESTART = { SYS: -512n, NOINTR: -513n, NOHAND: -514n, RESTARTBLOCK: -516n } as const;
const { SYS: ERESTARTSYS, NOINTR: ERESTARTNOINTR, NOHAND: ERESTARTNOHAND, RESTARTBLOCK: ERESTART_RESTARTBLOCK } = RESTART;

/**
 * The registers of a thread stopped inside a syscall, rewound so that the call runs
 * again when the thread resumes with no signal to deliver, as the kernel does after a
 * stop; orig_rax -1 leaves nothing for the kernel to restart. -ERESTART_RESTARTBLOCK
 * too runs the call again from the start (restart_syscall would return EINTR in a new
 * task, and after rt_sigreturn).
 */
export function rewoundRegs(saved: Regs): Regs {
  const regs = { ...saved };
  const rax = signed(regs.rax);
  const restart = rax === ERESTARTSYS || rax === ERESTARTNOINTR || rax === ERESTARTNOHAND || rax === ERESTART_RESTARTBLOCK;
  if (signed(regs.orig_rax) >= 0n && restart) {
    regs.rax = regs.orig_rax;
    regs.rip = BigInt.asUintN(64, regs.rip - 2n);
  }
  regs.orig_rax = BigInt.asUintN(64, -1n);
  return regs;
}

/** Bytes a frame with an xsave area of `xstateBytes` takes (a multiple of 64). */
export function sigframeSize(xstateBytes: number): number {
  return Math.ceil((FPSTATE + xstateBytes + 4) / 64) * 64;
}

/**
 * The frame to place at `at` (64-byte aligned); the thread returns through it with
 * rsp = at + 8. `xstate` is the thread's NT_X86_XSTATE as ptrace gives it.
 */
export function buildSigframe(args: { at: bigint; regs: Regs; mask: bigint; xstate: Buffer }): Buffer {
  const { at, xstate } = args;
  if (at % 64n !== 0n) throw new RangeError(`signal frame at 0x${at.toString(16)} is not 64-byte aligned`);
  const b = Buffer.alloc(sigframeSize(xstate.length));
  const regs = rewoundRegs(args.regs);
  b.writeBigUInt64LE(UC_FLAGS, 8);
  // An invalid ss_flags makes rt_sigreturn's sigaltstack step fail, and it ignores the
  // failure: the thread keeps whatever alternate stack it has (we never change it).
  b.writeUInt32LE(3, UC_STACK + 8);
  SIGCONTEXT_REGS.forEach((name, i) => b.writeBigUInt64LE(BigInt.asUintN(64, regs[name]), MCONTEXT + i * 8));
  b.writeUInt16LE(Number(regs.cs & 0xffffn), MCONTEXT + 144);
  b.writeUInt16LE(Number(regs.ss & 0xffffn), MCONTEXT + 150);
  b.writeBigUInt64LE(at + BigInt(FPSTATE), MCONTEXT + 184);
  b.writeBigUInt64LE(args.mask, SIGMASK);
  const fp = FPSTATE;
  xstate.copy(b, fp);
  const xfeatures = xstate.readBigUInt64LE(SW_BYTES);
  b.fill(0, fp + SW_BYTES, fp + 512);
  b.writeUInt32LE(FP_XSTATE_MAGIC1, fp + SW_BYTES);
  b.writeUInt32LE(xstate.length + 4, fp + SW_BYTES + 4);
  b.writeBigUInt64LE(xfeatures, fp + SW_BYTES + 8);
  b.writeUInt32LE(xstate.length, fp + SW_BYTES + 16);
  b.writeUInt32LE(FP_XSTATE_MAGIC2, fp + xstate.length);
  return b;
}

/** A syscall a thread makes by itself on its way back if ckpt is lost (undo of something done to it). */
export interface LostCall {
  nr: number;
  args: readonly bigint[];
}

const CALL_ARG_REGS = ['rdi', 'rsi', 'rdx', 'r10', 'r8', 'r9'] as const;

/**
 * Signal frames laid one after the other from `at`, one per call: returning through
 * the first runs the call (close(fd), munmap…) at `syscallRet` (`syscall; ret`), whose
 * ret lands on `sigreturn` (each frame's pretcode) with rsp on the next frame; the last
 * one's call returns into the frame at `next`, the thread's own. Signals stay blocked
 * until that one.
 */
export function buildCallChain(args: {
  at: bigint;
  calls: readonly LostCall[];
  regs: Regs;
  xstate: Buffer;
  sigreturn: bigint;
  syscallRet: bigint;
  next: bigint;
}): Buffer {
  const size = sigframeSize(args.xstate.length);
  const out = Buffer.alloc(size * args.calls.length);
  args.calls.forEach((c, i) => {
    const at = args.at + BigInt(size * i);
    const rsp = i + 1 < args.calls.length ? at + BigInt(size) : args.next;
    const regs = { ...args.regs, rax: BigInt(c.nr), rip: args.syscallRet, rsp, orig_rax: BigInt.asUintN(64, -1n) };
    c.args.forEach((v, k) => (regs[CALL_ARG_REGS[k]!] = BigInt.asUintN(64, v)));
    const frame = buildSigframe({ at, regs, mask: 0xffffffffffffffffn, xstate: args.xstate });
    frame.writeBigUInt64LE(args.sigreturn, 0);
    frame.copy(out, size * i);
  });
  return out;
}
