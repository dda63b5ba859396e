/** Capability probes: which ckpt features each missing capability costs. */
import { readStatus } from '../../proc/index.js';
import { getpid } from '../../sys/index.js';
import type { Probe } from './types.js';

export const CAP = {
  SETGID: 6,
  SETUID: 7,
  NET_ADMIN: 12,
  SYS_PTRACE: 19,
  SYS_ADMIN: 21,
  SYS_RESOURCE: 24,
  CHECKPOINT_RESTORE: 40,
} as const;

export function effectiveCaps(): bigint {
  return readStatus(getpid()).capEff;
}

export function hasCap(caps: bigint, cap: number): boolean {
  return ((caps >> BigInt(cap)) & 1n) === 1n;
}

function capProbe(cap: keyof typeof CAP, disables: string, required = false): Probe {
  const name = `cap_${cap.toLowerCase()}`;
  return {
    name,
    required,
    disables,
    run() {
      if (!hasCap(effectiveCaps(), CAP[cap])) throw new Error(`CAP_${cap} is not in our effective set`);
      return `CAP_${cap} is in our effective set`;
    },
  };
}

export const capProbes: Probe[] = [
  capProbe('SYS_PTRACE', "checkpointing other users' processes and processes with more capabilities than ours"),
  capProbe('SYS_ADMIN', 'restoring mm layout (PR_SET_MM_MAP) and set_tid when CAP_CHECKPOINT_RESTORE is missing'),
  capProbe('SYS_RESOURCE', "restoring rlimits above the current hard limit, prlimit on other users' processes"),
  capProbe('CHECKPOINT_RESTORE', 'restoring PIDs with clone3(set_tid) and the mm layout without CAP_SYS_ADMIN'),
  capProbe('NET_ADMIN', 'TCP_REPAIR: checkpointing established TCP connections'),
  capProbe('SETUID', 'restoring processes of other users (credentials)'),
  capProbe('SETGID', 'restoring processes of other groups (credentials)'),
];
