/**
 * The network lock (CRIU's `--network-lock`): while a tree holding TCP sockets is
 * dumped (from just before the freeze), and after a dump that killed it until its restore has every socket back, no
 * packet reaches those sockets or leaves them. Otherwise the kernel acknowledges bytes
 * that arrive after the dump read a socket's queues (the images do not hold them, the
 * peer will never send them again), and once the tree is killed a packet from a peer
 * draws a reset that ends its connection.
 *
 * The lock is a table of ckpt's own, `inet ckpt-PIDNS-ROOTPID` (nftables) or the chains
 * `ckpt-PIDNS-ROOTPID-in`/`-out` jumped to from INPUT/OUTPUT (iptables, ip6tables), with one
 * drop rule per local address and port of the tree's TCP sockets (listeners too, so no
 * connection is queued for accept meanwhile), in both directions, after one that lets
 * through the segments a restore forges (FORGED_MARK). Other traffic of the
 * machine passes; a socket bound to a wildcard address locks its port for every
 * address of both families.
 *
 * A ckpt killed while it held a lock leaves the table behind; it is stale once its
 * process runs again untraced (no dump of it is in progress and no restore is waiting
 * for it): the next dump or restore that locks or unlocks removes such tables
 * (`removeStaleLocks`), and `nft list tables | grep ckpt-` finds them.
 * PIDNS is the inode of ckpt's PID namespace: the tables live in the network
 * namespace, which ckpts in different PID namespaces may share, and their PIDs repeat.
 * Only locks of ckpt's own PID namespace (and the unqualified `ckpt-ROOTPID` of
 * images made before) can be judged stale; the others are left alone.
 */
import { z } from 'zod';
import { lazyChildProcess } from '../../common/builtin.js';
import { CkptError } from '../../common/errors.js';
import { sleepSync } from '../../infect/wait.js';
import { ownNamespaceInode, readStatus } from '../../proc/index.js';
import { AF_INET, AF_INET6, inetDiagAll, IPPROTO, TCP_STATE } from '../../sys/inet.js';

/**
 * The SO_MARK of the segments a restore forges to put a half-closed connection's FINs
 * back (kinds/tcp-fin.ts): the lock lets them through, first rule of each chain.
 */
export const FORGED_MARK = 0x636b7074; // "ckpt"

export const NETWORK_LOCK_METHODS = ['nftables', 'iptables', 'skip'] as const;
export type NetworkLockMethod = (typeof NETWORK_LOCK_METHODS)[number];

/** A local TCP endpoint the lock covers: `ip` 4 or 6, or 0 for a wildcard address (the port on every address). */
export const LockedPort = z.object({
  ip: z.union([z.literal(0), z.literal(4), z.literal(6)]),
  addr: z.string().max(64).regex(/^[0-9a-f.:]*$/),
  port: z.number().int().min(1).max(65535),
});
export type LockedPort = z.infer<typeof LockedPort>;

export const NetLockState = z.object({
  method: z.enum(['nftables', 'iptables']),
  /** `ckpt-PIDNS-ROOTPID` (`ckpt-ROOTPID` before 1.5): the nftables table, or the stem of the iptables chains. */
  name: z.string().regex(/^ckpt-(\d{1,12}-)?\d{1,7}$/),
  ports: z.array(LockedPort).max(1_000_000),
});
export type NetLockState = z.infer<typeof NetLockState>;

/** Written by a dump that killed its tree with the lock on; restore lifts it. */
export const NETLOCK_IMAGE = { name: 'netlock', kind: 'netlock', schema: NetLockState };

const V4_MAPPED = '00000000000000000000ffff';

function v6Text(hex: string): string {
  const groups = Array.from({ length: 8 }, (_, i) => Number.parseInt(hex.slice(i * 4, i * 4 + 4), 16).toString(16));
  return groups.join(':');
}

/** A sock_diag address as the lock sees it: v4-mapped IPv6 addresses are IPv4 ones on the wire. */
function endpoint(a: { family: number; src: string; sport: number }): LockedPort {
  if (/^0+$/.test(a.src)) return { ip: 0, addr: '', port: a.sport };
  if (a.family === AF_INET) return { ip: 4, addr: [...Buffer.from(a.src, 'hex')].join('.'), port: a.sport };
  if (a.src.startsWith(V4_MAPPED)) return { ip: 4, addr: [...Buffer.from(a.src.slice(24), 'hex')].join('.'), port: a.sport };
  return { ip: 6, addr: v6Text(a.src), port: a.sport };
}

/**
 * The local endpoints of the TCP sockets among `links` (the fd links of the tree,
 * `socket:[INO]`), from sock_diag: sockets in every state (only listeners under
 * --tcp-close, which gives connections up), unbound ones left out.
 */
export function tcpEndpoints(links: Iterable<string>, opts: { listenersOnly: boolean }): LockedPort[] {
  const inodes = socketInodes(links);
  if (inodes.size === 0) return [];
  const seen = new Map<string, LockedPort>();
  for (const family of [AF_INET, AF_INET6]) {
    for (const d of inetDiagAll(family, IPPROTO.TCP)) {
      if (!inodes.has(d.ino) || d.sport === 0 || (opts.listenersOnly && d.state !== TCP_STATE.LISTEN)) continue;
      const p = endpoint(d);
      seen.set(`${p.ip} ${p.addr} ${p.port}`, p);
    }
  }
  return [...seen.values()];
}

function socketInodes(links: Iterable<string>): Set<number> {
  const inodes = new Set<number>();
  for (const l of links) {
    const m = /^socket:\[(\d+)\]$/.exec(l);
    if (m) inodes.add(Number(m[1]));
  }
  return inodes;
}

/** Connections waiting in the accept queues of the listeners among `links` (sock_diag idiag_rqueue). */
function acceptQueued(inodes: Set<number>): number {
  let n = 0;
  for (const family of [AF_INET, AF_INET6]) {
    for (const d of inetDiagAll(family, IPPROTO.TCP)) if (d.state === TCP_STATE.LISTEN && inodes.has(d.ino)) n += d.rqueue;
  }
  return n;
}

/**
 * A connection in a listener's accept queue exists only as the listener's child: it
 * cannot be repaired, nor made a child again at restore, so the dump refuses it (as
 * CRIU does). But with the lock on no new one comes in, and the running program
 * empties its queues by itself: before the freeze the dump waits for that, up to
 * `timeoutMs`. Returns the connections still queued then (the dump refuses them).
 */
export function waitAcceptQueues(links: Iterable<string>, opts: { timeoutMs: number }): number {
  const inodes = socketInodes(links);
  if (inodes.size === 0) return 0;
  const until = performance.now() + opts.timeoutMs;
  let queued = acceptQueued(inodes);
  while (queued > 0 && performance.now() < until) {
    sleepSync(5);
    queued = acceptQueued(inodes);
  }
  return queued;
}

interface Backend {
  /** Puts the lock in place in one step, replacing a table of the same name. */
  lock(name: string, ports: readonly LockedPort[]): void;
  /** Removes it; nothing to do when it is not there. */
  unlock(name: string): void;
  /** The names of the locks present. */
  list(): string[];
}

function run(cmd: string, args: { argv: string[]; input?: string }): string {
  try {
    return lazyChildProcess().execFileSync(cmd, args.argv, { input: args.input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    if (err.code === 'ENOENT') throw new CkptError('UNSUPPORTED', `${cmd} is not installed`, { cause: e });
    throw new CkptError('SYSCALL', `${cmd} ${args.argv.join(' ')} failed: ${(err.stderr ?? err.message).trim().split('\n')[0]}`, { cause: e });
  }
}

const nftMatch = (p: LockedPort, dir: 'd' | 's') =>
  `${p.ip === 4 ? `ip ${dir}addr ${p.addr} ` : p.ip === 6 ? `ip6 ${dir}addr ${p.addr} ` : ''}tcp ${dir}port ${p.port} drop`;

const nftables: Backend = {
  lock(name, ports) {
    // "add" then "delete" removes a stale table of that name; the whole script is one transaction.
    const chain = (hook: string, dir: 'd' | 's') =>
      `  chain ${hook} {\n    type filter hook ${hook} priority raw; policy accept;\n    meta mark ${FORGED_MARK} accept\n${ports.map((p) => `    ${nftMatch(p, dir)}\n`).join('')}  }\n`;
    const script = `add table inet ${name}\ndelete table inet ${name}\ntable inet ${name} {\n${chain('input', 'd')}${chain('output', 's')}}\n`;
    run('nft', { argv: ['-f', '-'], input: script });
  },
  unlock(name) {
    run('nft', { argv: ['-f', '-'], input: `add table inet ${name}\ndelete table inet ${name}\n` });
  },
  list() {
    return [...run('nft', { argv: ['list', 'tables', 'inet'] }).matchAll(/^table inet (ckpt-[\d-]+)$/gm)].map((m) => m[1]!);
  },
};

/** iptables and ip6tables: chains NAME-in and NAME-out in the filter table, jumped to first from INPUT and OUTPUT. */
const iptables: Backend = {
  lock(name, ports) {
    this.unlock(name);
    for (const [cmd, ip] of [['iptables', 4], ['ip6tables', 6]] as const) {
      const mine = ports.filter((p) => p.ip === ip || p.ip === 0);
      const x = (...argv: string[]) => run(cmd, { argv: ['-w', ...argv] });
      for (const [suffix, hook, dir] of [['in', 'INPUT', 'd'], ['out', 'OUTPUT', 's']] as const) {
        const chain = `${name}-${suffix}`;
        x('-N', chain);
        x('-A', chain, '-m', 'mark', '--mark', String(FORGED_MARK), '-j', 'RETURN');
        for (const p of mine) x('-A', chain, ...(p.ip ? [`-${dir}`, p.addr] : []), '-p', 'tcp', `--${dir}port`, String(p.port), '-j', 'DROP');
        x('-I', hook, '1', '-j', chain);
      }
    }
  },
  unlock(name) {
    for (const cmd of ['iptables', 'ip6tables']) {
      const x = (...argv: string[]) => run(cmd, { argv: ['-w', ...argv] });
      const rules = x('-S');
      for (const [suffix, hook] of [['in', 'INPUT'], ['out', 'OUTPUT']] as const) {
        const chain = `${name}-${suffix}`;
        if (!rules.includes(`-N ${chain}\n`)) continue;
        while (x('-S', hook).includes(`-j ${chain}\n`)) x('-D', hook, '-j', chain);
        x('-F', chain);
        x('-X', chain);
      }
    }
  },
  list() {
    return [...new Set([...run('iptables', { argv: ['-w', '-S'] }).matchAll(/^-N (ckpt-[\d-]+)-in$/gm)].map((m) => m[1]!))];
  },
};

const BACKENDS: Record<Exclude<NetworkLockMethod, 'skip'>, Backend> = { nftables, iptables };

/**
 * Locks that no ckpt holds any more: their process runs, untraced (a dump in progress
 * traces it; between a dump that killed it and its restore it does not exist).
 */
function staleLocks(backend: Backend, keep: string): string[] {
  const ours = new RegExp(`^ckpt-(?:${ownNamespaceInode('pid')}-)?(\\d+)$`);
  return backend.list().filter((name) => {
    const pid = name === keep ? undefined : ours.exec(name)?.[1];
    if (pid === undefined) return false;
    try {
      return readStatus(Number(pid)).tracerPid === 0;
    } catch {
      return false; // gone: its images may still be restored
    }
  });
}

/** The name of the lock of the dump of the tree rooted at `rootPid` (of ckpt's PID namespace). */
export function lockName(rootPid: number): string {
  return `ckpt-${ownNamespaceInode('pid')}-${rootPid}`;
}

export interface NetLock {
  state: NetLockState;
  unlock(): void;
}

/**
 * Removes the locks no ckpt holds any more (`staleLocks`), best effort: called once a
 * dump or restore that used the lock is done, outside the time the tree is frozen.
 */
export function removeStaleLocks(state: Pick<NetLockState, 'method' | 'name'>): void {
  const backend = BACKENDS[state.method];
  try {
    for (const stale of staleLocks(backend, state.name)) backend.unlock(stale);
  } catch {
    // the next one will try again
  }
}

/**
 * Locks the endpoints for the dump of the tree rooted at `rootPid`, or replaces its lock
 * with one on more endpoints (one `nft -f` transaction: ~15 ms on an idle machine,
 * which is why the dump takes it before the freeze). Fails (UNSUPPORTED, naming the option) when the tool is missing.
 */
export function lockNetwork(rootPid: number, args: { method: Exclude<NetworkLockMethod, 'skip'>; ports: LockedPort[] }): NetLock {
  const backend = BACKENDS[args.method];
  const name = lockName(rootPid);
  const cmd = args.method === 'nftables' ? 'nft' : 'iptables';
  try {
    backend.lock(name, args.ports);
  } catch (e) {
    const why = e instanceof CkptError ? e.message : String(e);
    try {
      backend.unlock(name);
    } catch {
      // it was never there
    }
    throw new CkptError('UNSUPPORTED', `Cannot lock the network for the dump of process ${rootPid} (${args.ports.length} TCP port(s)): ${why}; ` +
      `install ${cmd} or choose another --network-lock (skip: dump without a lock; requests that arrive meanwhile may be lost)`, { cause: e });
  }
  const state: NetLockState = { method: args.method, name, ports: args.ports };
  return { state, unlock: () => backend.unlock(name) };
}

/**
 * Lifts a lock a dump left for the restore; also removes stale ones. Returns what went
 * wrong, if anything (the restored tree runs on: the caller warns). A missing tool
 * means no lock of ckpt's can be on this machine: nothing to do.
 */
export function unlockNetwork(state: Pick<NetLockState, 'method' | 'name'>): string | undefined {
  const backend = BACKENDS[state.method];
  try {
    backend.unlock(state.name);
    removeStaleLocks(state);
    return undefined;
  } catch (e) {
    if (e instanceof CkptError && e.code === 'UNSUPPORTED') return undefined;
    const how = state.method === 'nftables' ? `nft delete table inet ${state.name}` : `iptables and ip6tables: -D INPUT -j ${state.name}-in, -D OUTPUT -j ${state.name}-out, then -F and -X both chains`;
    return `the network lock ${state.name} (${state.method}) could not be lifted: ${(e as Error).message}; remove it by hand (${how})`;
  }
}
