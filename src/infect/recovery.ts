/**
 * Where a recoverable thread's way back lives (see remote.ts): its own signal frame on
 * its stack below the red zone, scratch below that, and, while fds are lent to it,
 * frames that close them first (frame.ts buildCallChain). A process with no gadget
 * or no stack room gets a page mapped for what it lacks (left mapped if ckpt dies).
 */
import { readMaps } from '../proc/index.js';
import { ptrace, NT, type Regs } from '../sys/index.js';
import { buildCallChain, buildSigframe, SIGRETURN_GADGETS, sigframeSize, type LostCall } from './frame.js';

/** The x86_64 ABI lets a function keep data in the 128 bytes below rsp. */
const RED_ZONE = 128n;
/** Scratch taken from a recoverable thread's stack when there is room (dump's largest use: 16 KiB of iovecs). */
const STACK_SCRATCH = 20480;

const alignDown = (v: bigint, a: bigint) => v - (v % a);

/** The part of the thread's stack below rsp and its red zone. */
function stackRoom(tid: number, rsp: bigint): { low: bigint; top: bigint } | undefined {
  const top = rsp - RED_ZONE;
  const area = readMaps(tid, { containing: top }).find((m) => m.prot.read && m.prot.write && !m.shared);
  return area ? { low: area.start, top } : undefined;
}

/** The thread's own frame when it is on its stack, and how low that stack goes. */
export interface StackFrame {
  frameAt: bigint;
  low: bigint;
  xstate: Buffer;
}

export interface Recovery {
  gadget: bigint;
  frameAt: bigint;
  base?: StackFrame;
  stackScratch?: { addr: bigint; size: number };
  bootstrap?: { addr: bigint; size: number };
}

/** Writes the thread's frame (its real registers, mask and xsave area) where it can go. */
export function placeRecovery(
  tid: number,
  args: { regs: Regs; mask: bigint; found: bigint | undefined; mmap: (size: number) => bigint; write: (addr: bigint, data: Buffer) => void },
): Recovery {
  const xstate = ptrace.getRegset(tid, NT.X86_XSTATE);
  const frameBytes = BigInt(sigframeSize(xstate.length));
  const room = stackRoom(tid, args.regs.rsp);
  let frameAt: bigint | undefined;
  let stackScratch: Recovery['stackScratch'];
  if (room && room.top - room.low >= frameBytes + 256n) {
    frameAt = alignDown(room.top - frameBytes, 64n);
    const scratchAt = alignDown(frameAt - BigInt(STACK_SCRATCH), 64n);
    if (scratchAt - 256n >= room.low) stackScratch = { addr: scratchAt, size: STACK_SCRATCH };
  }
  let gadget = args.found;
  let bootstrap: Recovery['bootstrap'];
  if (gadget === undefined || frameAt === undefined) {
    // The old way, once: a page for what the process lacks (the gadget's code, or room for the frame).
    const size = Number(frameBytes) + 8192;
    const page = args.mmap(size);
    bootstrap = { addr: page, size };
    if (gadget === undefined) {
      args.write(page, SIGRETURN_GADGETS[0]!);
      gadget = page;
    }
    frameAt ??= page + 4096n;
  }
  args.write(frameAt, buildSigframe({ at: frameAt, regs: args.regs, mask: args.mask, xstate }));
  const base = !bootstrap && room ? { frameAt, low: room.low, xstate } : undefined;
  return { gadget, frameAt, base, stackScratch, bootstrap };
}

/**
 * Writes frames that make `calls` (close of lent fds, munmap of a probe) below `below`
 * (the scratch) and returns the rsp the thread must rest with, or undefined when the
 * stack has no room; [] gives the rsp of the thread's own frame. Each call must be
 * harmless when it has nothing to undo (closing a number still free, unmapping an
 * empty range): the process is frozen, nothing else takes it meanwhile.
 */
export function placeCallChain(
  base: StackFrame,
  args: { calls: readonly LostCall[]; regs: Regs; below: bigint | undefined; sigreturn: bigint; syscallRet: bigint; write: (addr: bigint, data: Buffer) => void },
): bigint | undefined {
  const size = BigInt(sigframeSize(base.xstate.length));
  const lowest = alignDown((args.below ?? base.frameAt) - size * BigInt(args.calls.length), 64n);
  if (lowest - 256n < base.low) return undefined;
  const pretcode = Buffer.alloc(8);
  pretcode.writeBigUInt64LE(args.sigreturn);
  args.write(base.frameAt, pretcode);
  if (args.calls.length === 0) return base.frameAt + 8n;
  args.write(lowest, buildCallChain({ at: lowest, calls: args.calls, regs: args.regs, xstate: base.xstate, sigreturn: args.sigreturn, syscallRet: args.syscallRet, next: base.frameAt }));
  return lowest + 8n;
}
