/**
 * The multicast groups joined on each interface of a network namespace:
 * /proc/PID/net/igmp (IPv4; a device line, then one line per group, the address a
 * 32-bit word printed in host order) and /proc/PID/net/igmp6 (one line per group, the
 * address in network order):
 *
 *   Idx	Device    : Count Querier	Group    Users Timer	Reporter
 *   1	lo        :     1      V3
 *   				010000E0     1 0:00000000		0
 *
 *   1    lo              ff020000000000000000000000000001     1 0000000C 0
 *
 * They do not say which socket joined: they are the candidates ckpt asks each socket
 * about (MCAST_MSFILTER answers only for a group the socket itself joined).
 */
import { readFileSync } from 'node:fs';
import { procError, procPath } from './procfs.js';

export interface JoinedGroup {
  ifindex: number;
  /** The group address in network order, hex (8 or 32 digits). */
  group: string;
  users: number;
}

export function parseIgmp(text: string): JoinedGroup[] {
  const out: JoinedGroup[] = [];
  let ifindex = -1;
  for (const line of text.split('\n').slice(1)) {
    const dev = /^(\d+)\s+\S+\s*:/.exec(line);
    if (dev) {
      ifindex = Number(dev[1]);
      continue;
    }
    const g = /^\s+([0-9A-Fa-f]{8})\s+(\d+)/.exec(line);
    if (!g || ifindex < 0) continue;
    const h = g[1]!.toLowerCase();
    out.push({ ifindex, group: h.slice(6, 8) + h.slice(4, 6) + h.slice(2, 4) + h.slice(0, 2), users: Number(g[2]) });
  }
  return out;
}

export function parseIgmp6(text: string): JoinedGroup[] {
  const out: JoinedGroup[] = [];
  for (const line of text.split('\n')) {
    const g = /^(\d+)\s+\S+\s+([0-9a-fA-F]{32})\s+(\d+)/.exec(line);
    if (g) out.push({ ifindex: Number(g[1]), group: g[2]!.toLowerCase(), users: Number(g[3]) });
  }
  return out;
}

/** The groups joined in process `pid`'s network namespace, IPv4 or IPv6; empty when the file is missing (no IPv6). */
export function readJoinedGroups(pid: number, family: 'v4' | 'v6'): JoinedGroup[] {
  const rel = family === 'v4' ? 'net/igmp' : 'net/igmp6';
  let text: string;
  try {
    text = readFileSync(procPath(pid, rel), 'utf8');
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT' && family === 'v6') return [];
    throw procError(pid, rel, e);
  }
  return family === 'v4' ? parseIgmp(text) : parseIgmp6(text);
}
