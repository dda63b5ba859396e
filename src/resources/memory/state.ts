/** The saved shape of a process's memory layout (pages themselves live in the page file). */
import { z } from 'zod';
import { zU64 } from '../../images/index.js';
import { MAX_GUARDS, vmaList } from './vmas.js';

/**
 * shmem: a mapping of a shared memory object without a name (MAP_SHARED|MAP_ANONYMOUS,
 * "/dev/zero (deleted)" or "[anon_shmem:x]"); memfd: of a memfd ("/memfd:x (deleted)");
 * sysv: an attached SysV segment ("/SYSV<key> (deleted)"). Their contents are saved
 * once per object (see ShmemObject), not with the process's pages.
 */
export const VMA_KINDS = ['anon', 'file', 'heap', 'stack', 'vdso', 'vvar', 'vvar_vclock', 'vsyscall', 'shmem', 'memfd', 'sysv'] as const;

export const Vma = z.object({
  start: zU64,
  end: zU64,
  /** PROT_READ | PROT_WRITE | PROT_EXEC bits. */
  prot: z.number().int().min(0).max(7),
  shared: z.boolean(),
  kind: z.enum(VMA_KINDS),
  /** Index into MemoryState.files for file mappings. */
  file: z.number().int().min(0).optional(),
  /** File offset; for shmem, memfd and sysv areas the offset in the object. */
  offset: zU64,
  /** Index into MemoryState.shmem for shmem, memfd and sysv areas. */
  shm: z.number().int().min(0).optional(),
  /** smaps VmFlags (gd = grows down, nr = no reserve, dd = dontdump, …). */
  flags: z.array(z.string().max(4)).max(64),
  /**
   * A private area the process inherited from its parent at fork, unchanged since
   * (see cow.ts): pages still shared with the parent are not in this process's page file.
   */
  inherited: z.boolean().optional(),
  /** The name for anonymous areas named with PR_SET_VMA_ANON_NAME ("[anon:x]"). */
  name: z.string().max(4096).optional(),
  /** Guard regions (MADV_GUARD_INSTALL; VmFlags `gu`): page-aligned ranges inside the area, in order. */
  guards: z.array(z.object({ start: zU64, end: zU64 })).max(MAX_GUARDS).optional(),
});
export type Vma = z.infer<typeof Vma>;

/** Identity of a mapped file, checked at restore so a changed library is an error, not corruption. */
export const MappedFile = z.object({
  path: z.string().startsWith('/').max(4096).refine((p) => !p.includes('\0')),
  size: z.number().int().min(0),
  mtimeMs: z.number(),
  /** SHA-1 of the contents (null for an ELF file known by its build ID, and for very large files: size and mtime then decide). */
  sha1: z.string().regex(/^[0-9a-f]{40}$/).nullable(),
  /** GNU build ID of an ELF file (hex), which with the size identifies it (format 1.2). */
  buildId: z.string().regex(/^[0-9a-f]{16,128}$/).optional(),
});
export type MappedFile = z.infer<typeof MappedFile>;

/** SysV segment attributes from /proc/sysvipc/shm. */
export const SysvSegment = z.object({
  key: z.number().int(),
  id: z.number().int().min(0),
  /** Permission bits (perms & 0777). */
  mode: z.number().int().min(0).max(0o777),
  /** Marked for removal (IPC_RMID, SHM_DEST): removed again once attached after restore. */
  dest: z.boolean(),
  uid: z.number().int().min(0),
  gid: z.number().int().min(0),
});
export type SysvSegment = z.infer<typeof SysvSegment>;

/**
 * A shared memory object (a shmem inode) mapped or held by a process. Its pages live in
 * page file `pages` keyed by object offset, written once per dump whichever process
 * met the object first; every process that uses it carries this descriptor.
 */
export const ShmemObject = z.object({
  kind: z.enum(['shmem', 'memfd', 'sysv']),
  /** Inode number at dump (for sysv, the segment id). */
  ino: z.number().int().min(0),
  size: z.number().int().min(0),
  pages: z.string().regex(/^[a-z]+-[0-9]+$/),
  /** memfd name (without "memfd:"). */
  name: z.string().max(4096).optional(),
  /** memfd seals (F_GET_SEALS). */
  seals: z.number().int().min(0).optional(),
  /** memfd permission bits and owner (fchmod/fchown on a memfd are visible to its holders). */
  mode: z.number().int().min(0).max(0o7777).optional(),
  uid: z.number().int().min(0).max(0xffffffff).optional(),
  gid: z.number().int().min(0).max(0xffffffff).optional(),
  sysv: SysvSegment.optional(),
});
export type ShmemObject = z.infer<typeof ShmemObject>;

export const MmLayout = z.object({
  startCode: zU64,
  endCode: zU64,
  startData: zU64,
  endData: zU64,
  startBrk: zU64,
  brk: zU64,
  startStack: zU64,
  argStart: zU64,
  argEnd: zU64,
  envStart: zU64,
  envEnd: zU64,
});
export type MmLayout = z.infer<typeof MmLayout>;

export const MemoryState = z.object({
  /** Checked in one loop (vmas.ts): exactly what z.array(Vma) accepts. */
  vmas: vmaList(VMA_KINDS, 1_000_000),
  files: z.array(MappedFile).max(100_000),
  /** Shared memory objects the areas map (Vma.shm indexes this). */
  shmem: z.array(ShmemObject).max(100_000).default([]),
  mm: MmLayout,
  /** Raw /proc/PID/auxv, base64. */
  auxv: z.string().max(8192),
  /** Index into files of the executable (/proc/PID/exe). */
  exe: z.number().int().min(0),
  /**
   * mlockall(MCL_FUTURE) was in force: new mappings are locked ('locked'), or locked
   * on fault with MCL_ONFAULT ('onfault'). Locked areas themselves carry VmFlags lo/lf.
   */
  lockFuture: z.enum(['locked', 'onfault']).optional(),
  /**
   * Pages the dump wrote to this process's page file (format 1.1 on): restore refuses a
   * pagemap that lists another number (emptied, or taken from another dump).
   */
  pages: z.number().int().min(0).max(2 ** 44).optional(),
  /**
   * Format 1.4, incremental dumps: pages unchanged since the parent dump, which the
   * pagemap lists as in the parent (checked like `pages`).
   */
  inParent: z.number().int().min(0).max(2 ** 44).optional(),
});
export type MemoryState = z.infer<typeof MemoryState>;

export const PROT = { READ: 1, WRITE: 2, EXEC: 4 } as const;

/** Areas whose contents come from a shared memory object rather than the page file. */
export function isShmemArea(v: Pick<Vma, 'kind'>): boolean {
  return v.kind === 'shmem' || v.kind === 'memfd' || v.kind === 'sysv';
}

/** Areas with pages of their own in the process's page file: private, not the kernel's. */
export function hasOwnPages(v: Pick<Vma, 'kind' | 'shared'>): boolean {
  return !isKernelArea(v) && !v.shared;
}

/** Areas the kernel provides: never dumped, placed (vDSO) or left alone at restore. */
export function isKernelArea(v: Pick<Vma, 'kind'>): boolean {
  return v.kind === 'vdso' || v.kind === 'vvar' || v.kind === 'vvar_vclock' || v.kind === 'vsyscall';
}
