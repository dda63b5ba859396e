/**
 * The whole native surface of ckpt, declared in one place. Everything else in sys/
 * goes through `rawSyscall`: a fixed-arity syscall(2) is faster and safer through
 * koffi than the variadic prototype (see docs/architecture.md, "koffi pitfalls").
 *
 * All calls are synchronous on the calling thread: ptrace is per thread, and koffi's
 * async calls run on a pool thread where they fail with ESRCH.
 */
import koffi from 'koffi';

const LIBC_CANDIDATES = ['libc.so.6', '/lib/x86_64-linux-gnu/libc.so.6', '/usr/lib/x86_64-linux-gnu/libc.so.6', '/lib64/libc.so.6'];

function loadLibc(): ReturnType<typeof koffi.load> {
  const errors: string[] = [];
  for (const path of LIBC_CANDIDATES) {
    try {
      return koffi.load(path);
    } catch (e) {
      errors.push(`${path}: ${(e as Error).message}`);
    }
  }
  throw new Error(`Cannot load the C library; tried:\n  ${errors.join('\n  ')}`);
}

if (process.platform !== 'linux' || process.arch !== 'x64') {
  throw new Error(`Cannot start: ckpt supports Linux on x86_64 only (this is ${process.platform}/${process.arch})`);
}

const libc = loadLibc();
const syscall7 = libc.func('long syscall(long, long, long, long, long, long, long)');

export type Arg = number | bigint;

/** Result of a raw syscall: the return value, or -1 with errno set. */
export interface RawResult {
  ret: bigint;
  errno: number;
}

/**
 * Buffers whose address was taken since the last syscall returned: a buffer that the
 * caller no longer references (sockaddr built for one connect) could otherwise be
 * collected while the kernel reads or writes it, since koffi.address does not keep it.
 */
let pinned: Buffer[] = [];

export function rawSyscall(nr: number, args: readonly Arg[]): RawResult {
  const r = syscall7(nr, args[0] ?? 0, args[1] ?? 0, args[2] ?? 0, args[3] ?? 0, args[4] ?? 0, args[5] ?? 0);
  if (pinned.length > 0) pinned = [];
  const ret = BigInt(r);
  return { ret, errno: ret === -1n ? koffi.errno() : 0 };
}

/**
 * Address of a buffer's memory, to pass to a syscall. `buf` is kept alive until the
 * next syscall returns (see pinned); an address used in later calls too needs the
 * caller to keep `buf` referenced until then.
 */
export function addressOf(buf: Buffer): bigint {
  pinned.push(buf);
  return BigInt(koffi.address(buf) as bigint | number);
}

/** A live view of `len` bytes of our own memory at `addr` (not a copy): reads and writes go straight to it. */
export function viewMemory(addr: bigint, len: number): Uint8Array {
  return new Uint8Array(koffi.view(addr, len));
}

// posix_spawn and its attribute calls: every pointer is passed as an address (addressOf).
const spawnFns = {
  spawn: libc.func('int posix_spawn(_Out_ int *pid, long path, long actions, long attr, long argv, long envp)'),
  actionsInit: libc.func('int posix_spawn_file_actions_init(long actions)'),
  actionsOpen: libc.func('int posix_spawn_file_actions_addopen(long actions, int fd, long path, int oflag, int mode)'),
  actionsCloseFrom: libc.func('int posix_spawn_file_actions_addclosefrom_np(long actions, int from)'),
  actionsDestroy: libc.func('int posix_spawn_file_actions_destroy(long actions)'),
  attrInit: libc.func('int posix_spawnattr_init(long attr)'),
  attrFlags: libc.func('int posix_spawnattr_setflags(long attr, short flags)'),
  attrMask: libc.func('int posix_spawnattr_setsigmask(long attr, long set)'),
  attrDefault: libc.func('int posix_spawnattr_setsigdefault(long attr, long set)'),
  attrDestroy: libc.func('int posix_spawnattr_destroy(long attr)'),
};

/** libc's posix_spawn calls (they return an errno number, 0 on success). */
export const libcSpawn = spawnFns as { [K in keyof typeof spawnFns]: (...args: unknown[]) => number };
