/** The saved shape of a process's memory layout (pages themselves live in the page file). */
import { z } from 'zod';
import { zBig } from '../../images/index.js';

export const VMA_KINDS = ['anon', 'file', 'heap', 'stack', 'vdso', 'vvar', 'vvar_vclock', 'vsyscall'] as const;

export const Vma = z.object({
  start: zBig,
  end: zBig,
  /** PROT_READ | PROT_WRITE | PROT_EXEC bits. */
  prot: z.number().int().min(0).max(7),
  shared: z.boolean(),
  kind: z.enum(VMA_KINDS),
  /** Index into MemoryState.files for file mappings. */
  file: z.number().int().min(0).optional(),
  offset: zBig,
  /** smaps VmFlags (gd = grows down, nr = no reserve, dd = dontdump, …). */
  flags: z.array(z.string().max(4)).max(64),
  /** The name for anonymous areas named with PR_SET_VMA_ANON_NAME ("[anon:x]"). */
  name: z.string().max(4096).optional(),
});
export type Vma = z.infer<typeof Vma>;

/** Identity of a mapped file, checked at restore so a changed library is an error, not corruption. */
export const MappedFile = z.object({
  path: z.string().startsWith('/').max(4096).refine((p) => !p.includes('\0')),
  size: z.number().int().min(0),
  mtimeMs: z.number(),
  /** SHA-1 of the contents (null for very large files: size and mtime then decide). */
  sha1: z.string().regex(/^[0-9a-f]{40}$/).nullable(),
});
export type MappedFile = z.infer<typeof MappedFile>;

export const MmLayout = z.object({
  startCode: zBig,
  endCode: zBig,
  startData: zBig,
  endData: zBig,
  startBrk: zBig,
  brk: zBig,
  startStack: zBig,
  argStart: zBig,
  argEnd: zBig,
  envStart: zBig,
  envEnd: zBig,
});
export type MmLayout = z.infer<typeof MmLayout>;

export const MemoryState = z.object({
  vmas: z.array(Vma).max(1_000_000),
  files: z.array(MappedFile).max(100_000),
  mm: MmLayout,
  /** Raw /proc/PID/auxv, base64. */
  auxv: z.string().max(8192),
  /** Index into files of the executable (/proc/PID/exe). */
  exe: z.number().int().min(0),
});
export type MemoryState = z.infer<typeof MemoryState>;

export const PROT = { READ: 1, WRITE: 2, EXEC: 4 } as const;

/** Areas the kernel provides: never dumped, placed (vDSO) or left alone at restore. */
export function isKernelArea(v: Pick<Vma, 'kind'>): boolean {
  return v.kind === 'vdso' || v.kind === 'vvar' || v.kind === 'vvar_vclock' || v.kind === 'vsyscall';
}
