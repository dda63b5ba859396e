/**
 * Running syscalls inside a stopped thread. The thread's registers are saved; for each
 * call we point rip at an existing `syscall` instruction, load the arguments, and step
 * with PTRACE_SYSCALL to the syscall-exit stop, where rax holds the result. No code in
 * the target is written.
 *
 * `finish()` puts the thread back into an interrupt stop in the kernel's signal path
 * with its original registers, so that on resume the kernel itself decides whether an
 * interrupted syscall restarts (-ERESTART*), exactly as after SIGSTOP/SIGCONT.
 *
 * A dump borrows threads that must run on whatever happens to ckpt: if ckpt is killed
 * (SIGKILL, OOM), the kernel lets its tracees go with the registers they have at that
 * moment. With `recoverable`, a thread is never left with registers that would not
 * bring it back: before the first call its registers are pointed at an rt_sigreturn
 * gadget already in its code (`mov $15, %eax; syscall`, libc's __restore_rt) with rsp
 * on a signal frame holding its real registers, mask and xsave area (frame.ts), written
 * on its own stack below the red zone. Each call is then made by letting the thread
 * enter that rt_sigreturn and, at the syscall-entry stop, changing the call number and
 * arguments, with rip back on the gadget. Whenever ckpt vanishes, the thread finishes
 * the call in progress, returns through the frame and carries on where it was. Scratch
 * memory for arguments is taken from the stack too, below the frame, so nothing is
 * left behind either; a thread with too little stack gets a mapped scratch area (left
 * mapped if ckpt dies). Only a process with no gadget in its code needs one injected
 * mmap and munmap the old way (the thread's only exposed moments).
 */
import { CkptError } from '../common/errors.js';
import {
  ptrace, PTRACE_EVENT, SysError, readMemory, writeMemory, NR, type Arg, type Regs, signed, encodeRegs, REG_NAMES,
} from '../sys/index.js';
import { SYSCALL_RET, type LostCall } from './frame.js';
import { placeCallChain, placeRecovery, type StackFrame } from './recovery.js';
import { findGadget, findSigreturnGadget } from './site.js';
import { pollStop, waitStop, type StopStatus } from './wait.js';
import { BATCH_SCRATCH, BATCH_TAIL, nameOf, runQueued, sigtrapIsDefault, type CallName, type QueuedCall } from './batch.js';
import { ScratchArea } from './scratch.js';

const SIGTRAP = 5;
const SYSCALL_STOP = SIGTRAP | 0x80;
const ALL_SIGNALS = 0xffffffffffffffffn;
/** Byte offsets in user_regs_struct. */
const REG = Object.fromEntries(REG_NAMES.map((n, i) => [n, i * 8])) as Record<(typeof REG_NAMES)[number], number>;
const ARG_REGS = [REG.rdi, REG.rsi, REG.rdx, REG.r10, REG.r8, REG.r9];
const ENOSYS = 38n;

export interface TraceEvent {
  event: number;
  /** PTRACE_GETEVENTMSG: the new task's id for FORK/CLONE/VFORK. */
  msg: bigint;
}

export interface RemoteOptions {
  /** Address of a `syscall` instruction in the target (see findSyscallSite). */
  site: bigint;
  /** Called for ptrace events seen while a syscall runs (e.g. the child of an injected clone3). */
  onEvent?: (e: TraceEvent) => void;
  /**
   * The thread must come back by itself if ckpt dies while it is borrowed (dump):
   * true, or the address of an rt_sigreturn gadget found already (findSigreturnGadget).
   * Batches then run call by call.
   */
  recoverable?: boolean | bigint;
  /**
   * Nothing changes the thread's signal dispositions while it is borrowed (restore
   * --check reads only): whether a batch may stop on int3 is read once, not per batch.
   */
  dispositionsFixed?: boolean;
}

export class RemoteTask {
  readonly tid: number;
  readonly savedRegs: Regs;
  readonly savedMask: bigint;
  /** savedRegs encoded once; each injection patches the few registers it sets. */
  private regsBuf: Buffer;
  site: bigint;
  private onEvent: ((e: TraceEvent) => void) | undefined;
  /** Target memory for arguments and batch()'s code (scratch.ts). */
  private readonly area: ScratchArea = new ScratchArea(this);
  private injected = false;
  /** A call started by begin() whose result is not collected yet. */
  private running = false;
  /** stage(): stopped at the entry of a call not run yet. */
  private staged = false;
  /** stage() without a frame: the call end() runs. */
  private pending: { nr: number; args: readonly Arg[]; name: string } | undefined;
  /** Calls queued by batch(), run together with one stop. */
  private queue: QueuedCall[] | undefined;
  private arena = 0;
  private finished = false;
  /** Recoverable mode: the rt_sigreturn gadget the thread stands on, and rsp on its frame. */
  private gadget = 0n;
  private frameRsp = 0n;
  /** Where the thread's own frame is and how low its stack goes (recoverable mode, on the stack). */
  private base: StackFrame | undefined;
  /** A `syscall; ret` in the target's code, for closeIfLost (0n: none found). */
  private syscallRet: bigint | undefined;
  /** A page mapped the old way for a process with no gadget (or no stack room): unmapped by finish(). */
  private bootstrap: { addr: bigint; size: number } | undefined;
  count = 0;
  /** dispositionsFixed: sigtrapIsDefault, once read. */
  private trapDefault: boolean | undefined;
  private readonly dispositionsFixed: boolean;

  constructor(tid: number, opts: RemoteOptions) {
    this.tid = tid;
    this.dispositionsFixed = opts.dispositionsFixed ?? false;
    this.site = opts.site;
    this.onEvent = opts.onEvent;
    this.savedRegs = ptrace.getRegs(tid);
    this.regsBuf = encodeRegs(this.savedRegs);
    this.savedMask = ptrace.getSigmask(tid);
    // After arming: a thread left alone from now on returns through its frame, which also restores the mask.
    if (opts.recoverable) this.arm(opts.recoverable === true ? findSigreturnGadget(tid) : opts.recoverable);
    // Signals stay blocked while we borrow the thread, so none is delivered mid-injection.
    ptrace.setSigmask(tid, ALL_SIGNALS);
  }

  /** The gadget this thread returns through (recoverable mode), for the other threads of the process. */
  get recoverable(): boolean {
    return this.gadget !== 0n;
  }

  get sigreturnGadget(): bigint | undefined {
    return this.gadget === 0n || this.bootstrap ? undefined : this.gadget;
  }

  /** Writes the frame and points the thread at the gadget (see the file comment). */
  private arm(found: bigint | undefined): void {
    const r = placeRecovery(this.tid, {
      regs: this.savedRegs,
      mask: this.savedMask,
      found,
      mmap: (size) => BigInt.asUintN(64, this.call(NR.mmap, [0, size, 7, 0x22, -1, 0], 'mmap(recovery)')),
      write: (addr, data) => this.write(addr, data),
    });
    this.bootstrap = r.bootstrap;
    this.area.stackRoom = r.stackScratch;
    this.base = r.base;
    this.gadget = r.gadget;
    this.frameRsp = r.frameAt + 8n;
    const buf = this.regsBuf;
    buf.writeBigUInt64LE(r.gadget, REG.rip);
    buf.writeBigUInt64LE(this.frameRsp, REG.rsp);
    buf.writeBigUInt64LE(0xffffffffffffffffn, REG.orig_rax);
    ptrace.setRegsRaw(this.tid, buf);
  }

  /**
   * Fds the thread closes by itself if ckpt dies from now on, before it returns through
   * its frame: fds lent to the target for a while (runIfLost).
   */
  closeIfLost(fds: readonly number[]): boolean {
    return this.runIfLost(fds.map((fd) => ({ nr: NR.close, args: [BigInt(fd)] })));
  }

  /**
   * Calls the thread makes by itself if ckpt dies from now on, before it returns through
   * its frame (frames chained below the scratch, frame.ts buildCallChain): the undo of
   * something that lasts over several injected calls. False, arming nothing, where the
   * process has no `syscall; ret` or no stack room; [] disarms.
   */
  runIfLost(calls: readonly LostCall[]): boolean {
    if (this.running) throw new CkptError('INTERNAL', `Cannot arm calls in task ${this.tid}: a call is running`);
    const base = this.base;
    if (!base || this.gadget === 0n) return calls.length === 0;
    if (calls.length > 0) this.syscallRet ??= findGadget(this.tid, [SYSCALL_RET]) ?? 0n;
    if (calls.length > 0 && this.syscallRet === 0n) return false;
    const rsp = placeCallChain(base, { calls, regs: this.savedRegs, below: this.area.stackRoom?.addr, sigreturn: this.gadget, syscallRet: this.syscallRet!, write: (addr, data) => this.write(addr, data) });
    if (rsp === undefined) return false;
    this.frameRsp = rsp;
    // Stopped (armed, or after a call), the thread resumes with this rsp if left alone.
    ptrace.setRegs(this.tid, { ...ptrace.getRegs(this.tid), rsp: this.frameRsp });
    return true;
  }

  setSite(site: bigint): void {
    this.site = site;
  }

  /**
   * Where scratch memory must go (a hole the caller keeps free), e.g. while restore
   * maps areas with MAP_FIXED that would silently replace a scratch area placed by the kernel.
   */
  setScratchHint(addr: bigint): void {
    this.area.hint = addr;
  }

  /** Runs syscall nr with args; returns the raw (signed) result, -errno on failure. */
  raw(nr: number, args: readonly Arg[] = [], name: CallName = `syscall ${nr}`): bigint {
    if (this.queue) {
      this.queue.push({ nr, args, name });
      return 0n;
    }
    this.begin(nr, args, nameOf(name));
    return this.end();
  }

  /**
   * Starts syscall nr and returns while the thread runs it, so that ckpt can work at
   * the same time (a long copy split between the target and us); end() or poll()
   * collects the result. Nothing else may be injected into this thread meanwhile.
   */
  begin(nr: number, args: readonly Arg[], name: string): void {
    if (this.finished) throw new CkptError('INTERNAL', `Cannot inject into task ${this.tid}: session finished`);
    if (this.queue || this.running) throw new CkptError('INTERNAL', `Cannot start ${name} in task ${this.tid}: another call is queued or running`);
    if (this.gadget !== 0n) return this.beginAtGadget(nr, args, name);
    const buf = this.regsBuf;
    buf.writeBigUInt64LE(BigInt(nr), REG.rax);
    buf.writeBigUInt64LE(0xffffffffffffffffn, REG.orig_rax);
    ARG_REGS.forEach((off, i) => buf.writeBigUInt64LE(BigInt.asUintN(64, BigInt(args[i] ?? 0)), off));
    buf.writeBigUInt64LE(this.site, REG.rip);
    ptrace.setRegsRaw(this.tid, buf);
    this.injected = true;
    this.count++;
    this.stepToSyscallEntry();
    ptrace.syscallStep(this.tid);
    this.running = true;
  }

  /** Lets the thread run to its next syscall-entry stop. */
  private stepToSyscallEntry(): void {
    ptrace.syscallStep(this.tid);
    let first = waitStop(this.tid);
    // A pending job-control notification (e.g. after SIGCONT ended a group stop) traps
    // before the syscall is reached: step again, the registers are still ours.
    while (first.event === PTRACE_EVENT.STOP && first.signal !== SYSCALL_STOP) {
      ptrace.syscallStep(this.tid);
      first = waitStop(this.tid);
    }
    this.expectSyscallStop(first);
  }

  /**
   * Recoverable mode: the thread runs the gadget up to the entry of rt_sigreturn, where
   * the call becomes ours; rip goes back on the gadget, so the thread comes back to the
   * same place (and, left alone, returns through its frame) whatever happens.
   */
  private beginAtGadget(nr: number, args: readonly Arg[], name: string): void {
    this.enterAtGadget(nr, args, name);
    ptrace.syscallStep(this.tid);
    this.running = true;
  }

  /**
   * Recoverable mode: stops the thread at the entry of a call with the call swapped in,
   * without running it; end() runs it. A ckpt that dies meanwhile leaves the thread to
   * run it and then return through its frame: an undo that happens whatever becomes of
   * ckpt (munmap of something mapped for a moment). Without a frame (no gadget) the
   * call is only remembered, and end() runs it as any other. Nothing else may be
   * injected into this thread until end().
   */
  stage(nr: number, args: readonly Arg[], name: string): void {
    if (this.finished) throw new CkptError('INTERNAL', `Cannot inject into task ${this.tid}: session finished`);
    if (this.queue || this.running) throw new CkptError('INTERNAL', `Cannot stage ${name} in task ${this.tid}: another call is queued or running`);
    if (this.gadget === 0n) {
      this.pending = { nr, args, name };
      return;
    }
    this.enterAtGadget(nr, args, name);
    this.staged = true;
    this.running = true;
  }

  private enterAtGadget(nr: number, args: readonly Arg[], name: string): void {
    this.stepToSyscallEntry();
    const entered = ptrace.peekUser(this.tid, REG.orig_rax);
    if (entered !== BigInt(NR.rt_sigreturn)) {
      throw new CkptError('INTERNAL', `Cannot inject ${name} into task ${this.tid}: it entered syscall ${signed(entered)}, not rt_sigreturn`);
    }
    const buf = this.regsBuf;
    buf.writeBigUInt64LE(BigInt(nr), REG.orig_rax);
    buf.writeBigUInt64LE(BigInt.asUintN(64, -ENOSYS), REG.rax);
    ARG_REGS.forEach((off, i) => buf.writeBigUInt64LE(BigInt.asUintN(64, BigInt(args[i] ?? 0)), off));
    buf.writeBigUInt64LE(this.gadget, REG.rip);
    buf.writeBigUInt64LE(this.frameRsp, REG.rsp);
    ptrace.setRegsRaw(this.tid, buf);
    this.injected = true;
    this.count++;
  }

  /** Waits for the call begin() started; returns its raw result. */
  end(): bigint {
    const p = this.pending;
    if (p) {
      this.pending = undefined;
      return this.raw(p.nr, p.args, p.name);
    }
    return this.collect(false)!;
  }

  /** The result of the call begin() started if it has finished, else undefined (does not block). */
  poll(): bigint | undefined {
    return this.collect(true);
  }

  private collect(noWait: boolean): bigint | undefined {
    if (!this.running) throw new CkptError('INTERNAL', `Cannot collect a result from task ${this.tid}: no call is running`);
    if (this.staged) {
      this.staged = false;
      ptrace.syscallStep(this.tid);
    }
    for (;;) {
      const st = noWait ? pollStop(this.tid) : waitStop(this.tid);
      if (!st) return undefined;
      if (st.signal === SYSCALL_STOP) break;
      this.handleOtherStop(st);
      ptrace.syscallStep(this.tid);
    }
    this.running = false;
    return signed(ptrace.peekUser(this.tid, REG.rax));
  }

  /** Runs a syscall and throws a SysError naming it if it fails. */
  /** `name` (for errors) may be a function, called only on an error: 10 000 batched mmaps' names cost ~7 ms to make. */
  call(nr: number, args: readonly Arg[], name: CallName): bigint {
    const r = this.raw(nr, args, name);
    if (r < 0n && r > -4096n) throw new SysError(`${nameOf(name)} (injected)`, Number(-r), this.tid);
    return r;
  }

  private expectSyscallStop(st: StopStatus): void {
    if (st.signal === SYSCALL_STOP) return;
    throw new CkptError('INTERNAL', `Cannot inject into task ${this.tid}: expected a syscall stop, got signal ${st.signal} event ${st.event}`);
  }

  private handleOtherStop(st: StopStatus): void {
    if (st.event !== 0 && st.event !== PTRACE_EVENT.STOP) {
      this.onEvent?.({ event: st.event, msg: ptrace.getEventMsg(this.tid) });
      return;
    }
    throw new CkptError('INTERNAL', `Cannot inject into task ${this.tid}: unexpected stop (signal ${st.signal}, event ${st.event})`);
  }

  /** A scratch area of at least `size` bytes in the target, for syscall arguments. */
  scratch(size: number): bigint {
    if (this.queue) return this.arenaSlice(size);
    return this.area.ensure(size);
  }

  /** Copies data into scratch memory (at `offset`) and returns its address in the target. */
  put(data: Buffer, offset = 0): bigint {
    const base = this.queue ? this.arenaSlice(data.length) : this.scratch(offset + data.length) + BigInt(offset);
    this.write(base, data);
    return base;
  }

  /** Uses the scratch area of `owner`, a RemoteTask on another thread of the same process that outlives this use: no mmap. */
  shareScratch(owner: RemoteTask, size = 16384): void {
    this.area.share(owner.area, size);
  }

  /** Unmaps the scratch area now (before smaps at dump: ckpt's area is not the program's); a later call maps a new one. */
  releaseScratch(): void {
    this.area.release();
  }

  /** Gives up the scratch area without unmapping it, for a later RemoteTask of the thread (restore --check: two stops less). */
  handOverScratch(): { addr: bigint; size: number; code: boolean } | undefined {
    return this.area.handOver();
  }

  /** Takes a scratch area handed over by an earlier RemoteTask of this thread (handOverScratch); finish() unmaps it. */
  adoptScratch(area: { addr: bigint; size: number; code: boolean }): void {
    this.area.adopt(area);
  }

  /** Forgets the scratch area without unmapping it (the caller unmapped it, or replaced the memory map). */
  dropScratch(): void {
    this.area.drop();
  }

  write(addr: bigint, data: Buffer): void {
    writeMemory(this.tid, addr, data);
  }

  read(addr: bigint, len: number): Buffer {
    if (this.queue) throw new CkptError('INTERNAL', `Cannot read task ${this.tid} memory inside a batch: the calls have not run yet`);
    return readMemory(this.tid, addr, len);
  }

  /**
   * Runs the syscalls `fn` makes (through call/raw/put/scratch) together: they are
   * queued, then executed by a few bytes of code in the scratch area that loops over
   * a table of calls and stops with int3 after the last, or at the first error, which
   * is then thrown as call() would. One stop instead of two per call. Only for calls
   * whose results are not used (each returns 0n while queued) and that need no memory
   * read back; a process whose SIGTRAP is caught or ignored gets them one by one (sigtrapIsDefault).
   * Returns the calls' results, in order, once all have run (none inside an outer batch).
   */
  batch(fn: () => void): bigint[] {
    if (this.queue) {
      fn();
      return [];
    }
    const stack = this.area.stackRoom;
    this.scratch(stack ? Math.min(BATCH_SCRATCH, stack.size) : BATCH_SCRATCH);
    this.queue = [];
    this.arena = 0;
    let queued: NonNullable<typeof this.queue>;
    try {
      fn();
    } finally {
      queued = this.queue;
      this.queue = undefined;
    }
    if (queued.length === 0) return [];
    // A recoverable thread never runs code of ours: its calls go one by one through the gadget.
    if (this.gadget !== 0n || !this.area.code || !this.mayTrap()) {
      return queued.map((q) => this.call(q.nr, q.args, q.name));
    }
    const started = (n: number) => {
      this.injected = true;
      this.count += n;
    };
    return runQueued({ tid: this.tid, regs: this.regsBuf, savedRegs: this.savedRegs, area: this.area, arena: this.arena, onEvent: this.onEvent, started }, queued);
  }

  private mayTrap(): boolean {
    if (!this.dispositionsFixed) return sigtrapIsDefault(this.tid);
    this.trapDefault ??= sigtrapIsDefault(this.tid);
    return this.trapDefault;
  }

  private arenaSlice(size: number): bigint {
    const at = this.arena;
    this.arena += Math.ceil(Math.max(size, 1) / 64) * 64;
    if (this.arena > this.area.size - BATCH_TAIL) throw new CkptError('INTERNAL', `Cannot batch syscalls in task ${this.tid}: arguments exceed the scratch area`);
    return this.area.addr + BigInt(at);
  }

  /** Lets the thread run into an interrupt stop (PTRACE_EVENT_STOP) in the kernel's signal path. */
  private interruptStop(): void {
    ptrace.interrupt(this.tid);
    ptrace.cont(this.tid);
    for (;;) {
      const st = waitStop(this.tid);
      if (st.event === PTRACE_EVENT.STOP) break;
      ptrace.cont(this.tid, st.event === 0 && st.signal !== SYSCALL_STOP ? st.signal : 0);
    }
  }

  /**
   * Unmaps the scratch area and stops in the interrupt stop with two stops instead of
   * three: the munmap is started (syscall-entry stop) and the thread, interrupted, runs
   * it to its end and traps on its way back to user space, as from a syscall-exit stop.
   */
  private unmapIntoInterrupt(): void {
    const buf = this.regsBuf;
    buf.writeBigUInt64LE(BigInt(NR.munmap), REG.rax);
    buf.writeBigUInt64LE(0xffffffffffffffffn, REG.orig_rax);
    const args = [this.area.addr, BigInt(this.area.size)];
    ARG_REGS.forEach((off, i) => buf.writeBigUInt64LE(args[i] ?? 0n, off));
    buf.writeBigUInt64LE(this.site, REG.rip);
    ptrace.setRegsRaw(this.tid, buf);
    this.count++;
    this.stepToSyscallEntry();
    this.interruptStop();
    const r = signed(ptrace.peekUser(this.tid, REG.rax));
    if (r < 0n && r > -4096n) throw new SysError('munmap (injected)', Number(-r), this.tid);
  }

  /**
   * Frees the scratch area and returns the thread to its original registers and mask,
   * stopped. `direct`: set the registers where the thread stands (a syscall-exit or trap stop)
   * instead of going back to an interrupt stop first, which saves a round trip. The
   * kernel then applies no syscall-restart logic, so the caller must pass registers
   * already rewound for a restart (see resources/thread/cpu.ts): right for a thread
   * that did not exist before (restore), never for one that runs on after a dump.
   */
  finish(opts: { regs?: Regs; mask?: bigint; direct?: boolean } = {}): void {
    if (this.finished) return;
    // A call begun and abandoned (an error on our side of a shared copy) ends first.
    if (this.running) this.end();
    // The scratch area's munmap runs on the way into the interrupt stop below: one stop less.
    const fold = this.injected && !opts.direct && this.gadget === 0n && this.area.owned();
    if (fold) this.unmapIntoInterrupt();
    else this.area.unmap();
    this.area.drop();
    if (this.bootstrap) {
      // The frame or gadget lives in it: the thread goes back to the old way for this last call.
      this.gadget = 0n;
      this.call(NR.munmap, [this.bootstrap.addr, this.bootstrap.size], 'munmap(recovery)');
      this.bootstrap = undefined;
    }
    // Back into an interrupt stop inside the signal path (see the file comment).
    if (this.injected && !opts.direct && !fold) this.interruptStop();
    // Mask first: until the registers are back, a thread left alone still returns through its frame.
    ptrace.setSigmask(this.tid, opts.mask ?? this.savedMask);
    ptrace.setRegs(this.tid, opts.regs ?? this.savedRegs);
    this.finished = true;
  }
}
