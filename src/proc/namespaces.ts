/**
 * The namespaces a process is in (/proc/PID/ns/*), against ckpt's own. ckpt saves no
 * namespace: a restore puts the processes in the restorer's, so a process in
 * namespaces other than the dumper's would come back in different ones (another
 * hostname, network, mounts, user ids…) while the restore says it succeeded.
 */
import { readlinkSync } from 'node:fs';

/** The links compared, and what to call each in a message. */
const KINDS: Record<string, string> = {
  user: 'user',
  mnt: 'mount',
  net: 'network',
  uts: 'UTS (hostname)',
  ipc: 'IPC',
  pid: 'PID',
  pid_for_children: 'PID (for its children, after unshare)',
  cgroup: 'cgroup',
  time: 'time',
  time_for_children: 'time (for its children, after unshare)',
};

export interface ForeignNamespace {
  kind: string;
  what: string;
  theirs: string;
  ours: string;
}

function link(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    return undefined; // a kernel without that namespace kind, or a process gone
  }
}

/** The namespaces of `pid` that are not ckpt's, first the user namespace. */
export function foreignNamespaces(pid: number): ForeignNamespace[] {
  const out: ForeignNamespace[] = [];
  for (const [kind, what] of Object.entries(KINDS)) {
    const ours = link(`/proc/self/ns/${kind}`);
    const theirs = link(`/proc/${pid}/ns/${kind}`);
    if (ours !== undefined && theirs !== undefined && ours !== theirs) out.push({ kind, what, theirs, ours });
  }
  return out;
}

/** The inode of ckpt's own namespace of `kind` (`/proc/self/ns/KIND` reads `KIND:[INODE]`), or '0' without one. */
export function ownNamespaceInode(kind: string): string {
  return /\[(\d+)\]/.exec(link(`/proc/self/ns/${kind}`) ?? '')?.[1] ?? '0';
}
