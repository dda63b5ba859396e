/**
 * The scratch area of a RemoteTask: target memory for injected syscalls' arguments and
 * for batch()'s code. Mapped on demand by an injected mmap (executable, unless the
 * process refuses writable code), or taken from the thread's own stack (recoverable
 * mode, stackRoom), or borrowed from another thread of the same process (share), or
 * handed over from one RemoteTask of a thread to the next (handOver / adopt).
 */
import { NR, SysError, type Arg } from '../sys/index.js';

const PAGE = 4096;
const EACCES = 13n;

/** The injected calls the area needs (its RemoteTask's). */
export interface ScratchCalls {
  readonly tid: number;
  raw(nr: number, args: readonly Arg[], name: string): bigint;
  call(nr: number, args: readonly Arg[], name: string): bigint;
}

export class ScratchArea {
  addr = 0n;
  size = 0;
  /** The area may hold batch()'s code (false: mapped without PROT_EXEC, see ensure()). */
  code = true;
  /** Where a mapping must go (a hole the caller keeps free; 0n: where the kernel likes). */
  hint = 0n;
  /** The area belongs to another RemoteTask of the same process (see share). */
  private borrowed = false;
  private onStack = false;
  /** Scratch on the thread's own stack (recoverable mode), used while it is large enough. */
  stackRoom: { addr: bigint; size: number } | undefined;

  constructor(private readonly task: ScratchCalls) {}

  /** An area of at least `size` bytes, mapped if the present one is smaller. */
  ensure(size: number): bigint {
    if (size <= this.size) return this.addr;
    this.unmap();
    this.borrowed = false;
    this.onStack = false;
    if (this.stackRoom && size <= this.stackRoom.size) {
      this.addr = this.stackRoom.addr;
      this.size = this.stackRoom.size;
      this.onStack = true;
      return this.addr;
    }
    const len = Math.ceil(size / PAGE) * PAGE;
    // MAP_PRIVATE|MAP_ANONYMOUS (|MAP_FIXED_NOREPLACE at the hint); executable for batch()'s code.
    const flags = this.hint === 0n ? 0x22 : 0x22 | 0x100000;
    let at = this.task.raw(NR.mmap, [this.hint, len, 7, flags, -1, 0], 'mmap');
    // A process under memory-deny-write-execute (PR_SET_MDWE) may map nothing writable and
    // executable (EACCES): a plain read-write area, and batch() runs its calls one by one.
    this.code = at !== -EACCES;
    if (!this.code) at = this.task.call(NR.mmap, [this.hint, len, 3, flags, -1, 0], 'mmap');
    else if (at < 0n && at > -4096n) throw new SysError('mmap (injected)', Number(-at), this.task.tid);
    this.addr = BigInt.asUintN(64, at);
    this.size = len;
    return this.addr;
  }

  /** Uses `owner`'s area (another thread of the same process), mapping it there if needed. */
  share(owner: ScratchArea, size: number): void {
    // A recoverable thread with room on its stack uses that: nothing to map, nothing left behind.
    if (this.stackRoom && size <= this.stackRoom.size) return;
    this.addr = owner.ensure(size);
    this.size = owner.size;
    this.code = owner.code;
    this.borrowed = true;
  }

  /** Unmaps the area now; a later ensure() maps a new one. */
  release(): void {
    this.unmap();
    this.drop();
    this.borrowed = false;
  }

  /** Unmaps the area if it is a mapping of this task's own. */
  unmap(): void {
    if (this.owned()) this.task.call(NR.munmap, [this.addr, this.size], 'munmap');
  }

  owned(): boolean {
    return this.addr !== 0n && !this.borrowed && !this.onStack;
  }

  /** Gives up the area without unmapping it, for a later RemoteTask of the thread to adopt. */
  handOver(): { addr: bigint; size: number; code: boolean } | undefined {
    if (!this.owned()) return undefined;
    const area = { addr: this.addr, size: this.size, code: this.code };
    this.drop();
    return area;
  }

  /** Takes an area handed over by an earlier RemoteTask of this thread; it is then this one's to unmap. */
  adopt(area: { addr: bigint; size: number; code: boolean }): void {
    this.unmap();
    this.addr = area.addr;
    this.size = area.size;
    this.code = area.code;
    this.borrowed = false;
    this.onStack = false;
  }

  /** Forgets the area without unmapping it. */
  drop(): void {
    this.addr = 0n;
    this.size = 0;
    this.onStack = false;
  }
}
