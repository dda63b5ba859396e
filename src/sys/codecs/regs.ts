/** struct user_regs_struct (x86_64, arch/x86/include/asm/user_64.h): 27 u64 fields. */
export const REG_NAMES = [
  'r15', 'r14', 'r13', 'r12', 'rbp', 'rbx', 'r11', 'r10', 'r9', 'r8', 'rax', 'rcx', 'rdx', 'rsi', 'rdi',
  'orig_rax', 'rip', 'cs', 'eflags', 'rsp', 'ss', 'fs_base', 'gs_base', 'ds', 'es', 'fs', 'gs',
] as const;

export type RegName = (typeof REG_NAMES)[number];
export type Regs = Record<RegName, bigint>;
export const REGS_SIZE = REG_NAMES.length * 8;

export function decodeRegs(buf: Buffer): Regs {
  if (buf.length < REGS_SIZE) throw new RangeError(`user_regs_struct needs ${REGS_SIZE} bytes, got ${buf.length}`);
  const regs = {} as Regs;
  REG_NAMES.forEach((name, i) => {
    regs[name] = buf.readBigUInt64LE(i * 8);
  });
  return regs;
}

export function encodeRegs(regs: Regs, buf: Buffer = Buffer.alloc(REGS_SIZE)): Buffer {
  REG_NAMES.forEach((name, i) => {
    buf.writeBigUInt64LE(BigInt.asUintN(64, regs[name]), i * 8);
  });
  return buf;
}

/** Signed view of a register, e.g. rax after a failed syscall (-errno). */
export function signed(v: bigint): bigint {
  return BigInt.asIntN(64, v);
}
