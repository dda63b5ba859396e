/**
 * The socket tables of /proc/PID/net (udp, udplite, raw, icmp and their IPv6 twins),
 * printed by the kernel's *_seq_show:
 *
 *   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
 *    0: 0100007F:5B4C 0100007F:0000 01 00000000:00000000 00:00000000 00000000     0        0 1016 2 0000000000000000 0
 *
 * Addresses are 32-bit words printed in host order (little-endian here), so each word's
 * bytes are reversed to get network order. They are the only per-socket view of the
 * peer of a connected raw or ping socket: getpeername answers ENOTCONN for those, since
 * they have no destination port.
 */
import { readFileSync } from 'node:fs';
import { procError, procPath } from './procfs.js';

export interface NetSockLine {
  /** Raw address bytes in network order, hex (8 digits for IPv4, 32 for IPv6). */
  local: { addr: string; port: number };
  remote: { addr: string; port: number };
  /** TCP_* state numbers: 1 established (connected), 7 close. */
  state: number;
  txQueue: number;
  rxQueue: number;
  ino: number;
}

/** "0100007F" → "7f000001": every 8-digit word byte-reversed. */
function networkOrder(hex: string): string {
  let out = '';
  for (let i = 0; i < hex.length; i += 8) {
    const w = hex.slice(i, i + 8);
    out += w.slice(6, 8) + w.slice(4, 6) + w.slice(2, 4) + w.slice(0, 2);
  }
  return out.toLowerCase();
}

function endpoint(s: string): { addr: string; port: number } | undefined {
  const m = /^([0-9A-Fa-f]{8}|[0-9A-Fa-f]{32}):([0-9A-Fa-f]{4})$/.exec(s);
  return m ? { addr: networkOrder(m[1]!), port: parseInt(m[2]!, 16) } : undefined;
}

export function parseNetSockets(text: string): NetSockLine[] {
  const out: NetSockLine[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const local = endpoint(f[1]!);
    const remote = endpoint(f[2]!);
    const queues = /^([0-9A-Fa-f]+):([0-9A-Fa-f]+)$/.exec(f[4]!);
    if (!local || !remote || !queues) continue;
    out.push({
      local, remote, state: parseInt(f[3]!, 16), txQueue: parseInt(queues[1]!, 16), rxQueue: parseInt(queues[2]!, 16),
      ino: Number(f[9]),
    });
  }
  return out;
}

/** /proc/PID/net/`table` ("raw6", "icmp", "udplite"…): the sockets of the process's network namespace. */
export function readNetSockets(pid: number, table: string): NetSockLine[] {
  const rel = `net/${table}`;
  try {
    return parseNetSockets(readFileSync(procPath(pid, rel), 'utf8'));
  } catch (e) {
    throw procError(pid, rel, e);
  }
}
