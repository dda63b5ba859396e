/**
 * "Never restore more privilege than the restorer has." An image is data anyone could
 * have written; restoring it must not become a way to obtain uid 0 or a capability
 * the user running ckpt does not hold. This compares an image's credentials with the
 * restorer's own, before anything is changed.
 */
import { CkptError } from '../../common/errors.js';
import { readStatus } from '../../proc/index.js';

/** capability.h order. */
export const CAP_NAMES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST', 'CAP_NET_ADMIN',
  'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT', 'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE', 'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM', 'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ',
  'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
];

export const CAP = Object.fromEntries(CAP_NAMES.map((n, i) => [n, i])) as Record<string, number>;

export function capName(cap: number): string {
  return CAP_NAMES[cap] ?? `capability ${cap}`;
}

export function capBit(cap: number): bigint {
  return 1n << BigInt(cap);
}

/** The credentials an image asks for (a subset of CredsState). */
export interface CredsRequest {
  uid: number[];
  gid: number[];
  groups: number[];
  caps: { inh: bigint; prm: bigint; eff: bigint; bnd: bigint; amb: bigint };
}

/** What the restorer holds. */
export interface Privilege {
  uid: number[];
  gid: number[];
  groups: number[];
  capEff: bigint;
  capBnd: bigint;
}

/** The privilege of this process (the restorer). */
export function restorerPrivilege(): Privilege {
  const st = readStatus(process.pid);
  return { uid: st.uid, gid: st.gid, groups: st.groups, capEff: st.capEff, capBnd: st.capBnd };
}

function firstCap(mask: bigint): number | undefined {
  for (let c = 0; c < 64; c++) if ((mask & capBit(c)) !== 0n) return c;
  return undefined;
}

/** What the image asks for that the restorer lacks, in words; undefined if nothing. */
export function excessPrivilege(req: CredsRequest, have: Privilege): string | undefined {
  const may = (c: string): boolean => (have.capEff & capBit(CAP[c] ?? 0)) !== 0n;
  if (!may('CAP_SETUID')) {
    const uid = req.uid.find((u) => !have.uid.includes(u));
    if (uid !== undefined) return `uid ${uid}`;
  }
  if (!may('CAP_SETGID')) {
    const gid = req.gid.find((g) => !have.gid.includes(g));
    if (gid !== undefined) return `gid ${gid}`;
    const group = req.groups.find((g) => !have.groups.includes(g));
    if (group !== undefined) return `group ${group}`;
  }
  // Any capability the process could use (or regain through exec) counts.
  const wanted = req.caps.prm | req.caps.eff | req.caps.inh | req.caps.amb;
  const cap = firstCap(wanted & ~have.capEff) ?? firstCap(req.caps.bnd & ~have.capBnd);
  return cap === undefined ? undefined : capName(cap);
}

/** Throws PERMISSION if restoring `req` into process `pid` would grant more than the restorer has. */
export function checkPrivilege(req: CredsRequest, opts: { pid: number; have?: Privilege }): void {
  const excess = excessPrivilege(req, opts.have ?? restorerPrivilege());
  if (excess === undefined) return;
  throw new CkptError('PERMISSION', `Cannot restore process ${opts.pid}: its image asks for more privilege than the restorer has (${excess})`);
}
