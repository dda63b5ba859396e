/**
 * "Never restore more privilege than the restorer has." An image is data anyone could
 * have written; restoring it must not become a way to obtain uid 0 or a capability
 * the user running ckpt does not hold. This compares an image's credentials with the
 * restorer's own, before anything is changed.
 */
import { readFileSync } from 'node:fs';
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

const ID_FIELDS = ['real', 'effective', 'saved', 'filesystem'];
const CAP_SETS = [['prm', 'permitted'], ['eff', 'effective'], ['inh', 'inheritable'], ['amb', 'ambient']] as const;

/** What the image asks for that `have` lacks, naming the field (e.g. "effective uid 0"); undefined if nothing. */
export function excessPrivilege(req: CredsRequest, have: Privilege): string | undefined {
  const may = (c: string): boolean => (have.capEff & capBit(CAP[c] ?? 0)) !== 0n;
  if (!may('CAP_SETUID')) {
    const i = req.uid.findIndex((u) => !have.uid.includes(u));
    if (i >= 0) return `${ID_FIELDS[i] ?? ''} uid ${req.uid[i]}`;
  }
  if (!may('CAP_SETGID')) {
    const i = req.gid.findIndex((g) => !have.gid.includes(g));
    if (i >= 0) return `${ID_FIELDS[i] ?? ''} gid ${req.gid[i]}`;
    const group = req.groups.find((g) => !have.groups.includes(g));
    if (group !== undefined) return `supplementary group ${group}`;
  }
  // Any capability the process could use (or regain through exec) counts.
  for (const [set, name] of CAP_SETS) {
    const cap = firstCap(req.caps[set] & ~have.capEff);
    if (cap !== undefined) return `${name} capability ${capName(cap)}`;
  }
  const cap = firstCap(req.caps.bnd & ~have.capBnd);
  return cap === undefined ? undefined : `bounding capability ${capName(cap)}`;
}

/** Whose privilege a restore is held to: the restorer's own, or also an image owner's (see docs/security.md). */
export interface PrivilegeLimit {
  /** The images' owner when it is neither the restorer nor root: the restore may not exceed what it has. */
  owner?: { uid: number; have: Privilege };
}

/** Throws PERMISSION if restoring `req` into process `pid` would grant more than the restorer (or the images' owner) has. */
export function checkPrivilege(req: CredsRequest, opts: { pid: number; have?: Privilege; limit?: PrivilegeLimit }): void {
  const excess = excessPrivilege(req, opts.have ?? restorerPrivilege());
  if (excess !== undefined) {
    throw new CkptError('PERMISSION', `Cannot restore process ${opts.pid}: its image asks for more privilege than the restorer has (${excess})`);
  }
  const owner = opts.limit?.owner;
  if (!owner) return;
  const beyond = excessPrivilege(req, owner.have);
  if (beyond === undefined) return;
  throw new CkptError(
    'PERMISSION',
    `Cannot restore process ${opts.pid}: its image asks for more privilege than the images' owner (uid ${owner.uid}) has (${beyond}); restore images from others only with --trust-images`,
  );
}

function readLines(path: string): string[][] {
  try {
    return readFileSync(path, 'utf8').split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(':'));
  } catch {
    return [];
  }
}

/**
 * What an ordinary user holds: its uid, its primary group and the groups /etc/group
 * lists it in (plus `extraGid`, the group of its image files), no capabilities, and a
 * bounding set no larger than ours (which only limits what exec can give back).
 * Only the local files are read (not LDAP & co.): a user they do not describe gets
 * fewer groups, so a restore is refused rather than given too much.
 */
export function userPrivilege(uid: number, opts: { extraGid?: number; capBnd: bigint }): Privilege {
  const pw = readLines('/etc/passwd').find((f) => Number(f[2]) === uid && f[2] !== '');
  const gids = new Set<number>();
  if (pw && pw[3] !== undefined && /^\d+$/.test(pw[3])) gids.add(Number(pw[3]));
  if (opts.extraGid !== undefined) gids.add(opts.extraGid);
  const name = pw?.[0];
  for (const g of readLines('/etc/group')) {
    const members = (g[3] ?? '').split(',');
    if (name !== undefined && members.includes(name) && /^\d+$/.test(g[2] ?? '')) gids.add(Number(g[2]));
  }
  const list = [...gids];
  return { uid: [uid], gid: list, groups: list, capEff: 0n, capBnd: opts.capBnd };
}
