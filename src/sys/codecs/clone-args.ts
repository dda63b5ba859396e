/** struct clone_args (include/uapi/linux/sched.h, CLONE_ARGS_SIZE_VER2 = 88 bytes). */
export interface CloneArgs {
  flags: bigint;
  pidfd: bigint;
  childTid: bigint;
  parentTid: bigint;
  exitSignal: bigint;
  stack: bigint;
  stackSize: bigint;
  tls: bigint;
  setTid: bigint;
  setTidSize: bigint;
  cgroup: bigint;
}

const FIELDS: (keyof CloneArgs)[] = [
  'flags', 'pidfd', 'childTid', 'parentTid', 'exitSignal', 'stack', 'stackSize', 'tls', 'setTid', 'setTidSize', 'cgroup',
];
export const CLONE_ARGS_SIZE = FIELDS.length * 8;

export const CLONE = {
  VM: 0x100n,
  FS: 0x200n,
  FILES: 0x400n,
  SIGHAND: 0x800n,
  PIDFD: 0x1000n,
  PTRACE: 0x2000n,
  VFORK: 0x4000n,
  PARENT: 0x8000n,
  THREAD: 0x10000n,
  SYSVSEM: 0x40000n,
  SETTLS: 0x80000n,
  PARENT_SETTID: 0x100000n,
  CHILD_CLEARTID: 0x200000n,
  CHILD_SETTID: 0x1000000n,
} as const;

export function encodeCloneArgs(args: Partial<CloneArgs>): Buffer {
  const buf = Buffer.alloc(CLONE_ARGS_SIZE);
  FIELDS.forEach((f, i) => buf.writeBigUInt64LE(BigInt.asUintN(64, args[f] ?? 0n), i * 8));
  return buf;
}

export function decodeCloneArgs(buf: Buffer): CloneArgs {
  const out = {} as CloneArgs;
  FIELDS.forEach((f, i) => {
    out[f] = buf.readBigUInt64LE(i * 8);
  });
  return out;
}
