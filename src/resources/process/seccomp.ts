/**
 * Seccomp filters, per thread. Seizing a thread under seccomp suspends its filters
 * (PTRACE_O_SUSPEND_SECCOMP, infect/seize.ts), so the syscalls ckpt injects are not
 * filtered; the dump runs this module first anyway, so a refusal comes before any
 * injection. Strict mode is refused.
 *
 * Dump: each thread's chain of filters, oldest first, read with
 * PTRACE_SECCOMP_GET_FILTER, and the flag the kernel keeps for each (LOG, from
 * PTRACE_SECCOMP_GET_METADATA). Which threads share a filter object is shown nowhere:
 * filters with the same instructions at the same place after the same ones are taken
 * as one (what inheritance at clone and SECCOMP_FILTER_FLAG_TSYNC make). A filter that
 * can return SECCOMP_RET_USER_NOTIF is refused (its listener cannot be rebuilt).
 *
 * Restore, in the 'last' phase of each thread, before its credentials (installing a
 * filter without no_new_privs needs the restorer's CAP_SYS_ADMIN): the filters every
 * thread shares are installed once, by the first thread to get there, with TSYNC, so
 * they stay one object shared by all (a later TSYNC of the program's works again); each
 * thread then installs the rest of its chain alone. A filter some threads share beyond
 * that common part could only be rebuilt as separate copies: refused at dump. Before the
 * first install every thread of the process gets PTRACE_O_SUSPEND_SECCOMP, so what is
 * injected afterwards (credentials, registers, the check) is not filtered; the filters
 * apply once restore detaches.
 */
import { z } from 'zod';
import { CkptError } from '../../common/errors.js';
import { RESTORE_PTRACE_OPTIONS } from '../../infect/index.js';
import { listTasks, readTaskStatus } from '../../proc/index.js';
import {
  BPF_MAXINSNS, encodeSockFprog, errnoName, NR, ptrace, PTRACE_O, SECCOMP, SECCOMP_FILTER_FLAG, seccompFilter, seccompFilterFlags, SOCK_FILTER_SIZE,
} from '../../sys/index.js';
import type { Resource, RestoreContext } from '../types.js';

const zFilter = z.object({
  /** The instructions (struct sock_filter[]), base64. */
  prog: z.string().max(Math.ceil((BPF_MAXINSNS * SOCK_FILTER_SIZE) / 3) * 4).refine((p) => {
    const n = Buffer.from(p, 'base64').length;
    return n > 0 && n % SOCK_FILTER_SIZE === 0;
  }, 'a filter is a non-empty array of 8-byte instructions'),
  /** Installed with SECCOMP_FILTER_FLAG_LOG. */
  log: z.boolean(),
});
const zThread = z.object({ tid: z.number().int().min(1).max(0x3fffffff), filters: z.array(zFilter).min(1).max(1024) });

export interface SeccompState {
  /** 0: no thread uses seccomp; 2: some threads have filters (listed in `threads`). */
  mode: 0 | 2;
  threads?: { tid: number; filters: { prog: string; log: boolean }[] }[];
}

export const seccompSchema: z.ZodType<SeccompState> = z
  .object({
    mode: z.union([z.literal(0), z.literal(2)]),
    threads: z.array(zThread).max(1 << 16).optional(),
  })
  // Filters without threads (or threads without mode 2) would restore none: a state to refuse.
  .refine((s) => (s.mode === 2) === (s.threads !== undefined && s.threads.length > 0), 'mode 2 lists the threads with filters, mode 0 none');

type Filter = { prog: string; log: boolean };

const sameFilter = (a: Filter | undefined, b: Filter | undefined) => a !== undefined && b !== undefined && a.prog === b.prog && a.log === b.log;

/** How many filters, from the oldest, every one of the chains has in common. */
function commonLength(chains: readonly (readonly Filter[])[]): number {
  const first = chains[0] ?? [];
  let n = 0;
  while (n < first.length && chains.every((c) => sameFilter(c[n], first[n]))) n++;
  return n;
}

/** SECCOMP_RET_USER_NOTIF as the constant of a `ret k` instruction (BPF_RET | BPF_K). */
function returnsUserNotif(prog: Buffer): boolean {
  for (let i = 0; i < prog.length; i += SOCK_FILTER_SIZE) {
    if (prog.readUInt16LE(i) === 0x06 && (prog.readUInt32LE(i + 4) & 0xffff0000) >>> 0 === 0x7fc00000) return true;
  }
  return false;
}

function readChain(pid: number, tid: number): Filter[] {
  const chain: Filter[] = [];
  for (let i = 0; ; i++) {
    const prog = seccompFilter(tid, i);
    if (prog === undefined) break;
    if (returnsUserNotif(prog)) {
      throw new CkptError('UNSUPPORTED', `Cannot dump process ${pid}: seccomp filter ${i} of thread ${tid} can return SECCOMP_RET_USER_NOTIF; user notification listeners are not supported yet`);
    }
    chain.push({ prog: prog.toString('base64'), log: (seccompFilterFlags(tid, i) & SECCOMP_FILTER_FLAG.LOG) !== 0 });
  }
  return chain;
}

export const seccomp: Resource<SeccompState> = {
  name: 'seccomp',
  schema: seccompSchema,
  dump(ctx) {
    const chains: { tid: number; filters: Filter[] }[] = [];
    for (const tid of ctx.proc.tids.length > 0 ? ctx.proc.tids : [ctx.pid]) {
      const mode = readTaskStatus(ctx.pid, tid).seccomp;
      if (mode === 1) throw new CkptError('UNSUPPORTED', `Cannot dump process ${ctx.pid}: thread ${tid} runs in seccomp strict mode, which is not supported`);
      chains.push({ tid, filters: mode === 2 ? readChain(ctx.pid, tid) : [] });
    }
    if (chains.every((c) => c.filters.length === 0)) return { mode: 0 };
    const common = commonLength(chains.map((c) => c.filters));
    for (const [i, a] of chains.entries()) {
      const b = chains.slice(i + 1).find((c) => sameFilter(c.filters[common], a.filters[common]));
      if (b) {
        const lacking = chains.find((c) => !sameFilter(c.filters[common], a.filters[common]))!;
        throw new CkptError(
          'UNSUPPORTED',
          `Cannot dump process ${ctx.pid}: threads ${a.tid} and ${b.tid} share seccomp filter ${common + 1} of their chains, which thread ${lacking.tid} lacks; only filters every thread shares, or each thread's own, can be restored`,
        );
      }
    }
    return { mode: 2, threads: chains.filter((c) => c.filters.length > 0) };
  },
  restore(ctx, state) {
    if (state.mode === 0 || !state.threads) return;
    const tid = ctx.remote.tid;
    const saved = new Map(state.threads.map((t) => [t.tid, t.filters]));
    const tids = listTasks(ctx.pid);
    const chains = tids.map((t) => saved.get(t) ?? []);
    const common = commonLength(chains);
    const mine = saved.get(tid) ?? [];
    // The first thread here suspends everyone's filters and installs the shared ones for all.
    const installed = Number(readTaskStatus(ctx.pid, tid).raw['Seccomp_filters'] ?? '0');
    if (installed === 0 && mine.length > 0) {
      for (const t of tids) ptrace.setOptions(t, RESTORE_PTRACE_OPTIONS | PTRACE_O.SUSPEND_SECCOMP);
      for (const f of mine.slice(0, common)) install(ctx, { filter: f, tsync: true });
    }
    for (const f of mine.slice(Math.max(installed, common))) install(ctx, { filter: f, tsync: false });
  },
};

function install(ctx: RestoreContext, args: { filter: Filter; tsync: boolean }): void {
  const prog = Buffer.from(args.filter.prog, 'base64');
  const base = ctx.remote.scratch(16 + prog.length);
  ctx.remote.put(prog, 16);
  ctx.remote.put(encodeSockFprog(prog.length, base + 16n), 0);
  const flags = (args.tsync ? SECCOMP_FILTER_FLAG.TSYNC : 0) | (args.filter.log ? SECCOMP_FILTER_FLAG.LOG : 0);
  const r = ctx.remote.raw(NR.seccomp, [SECCOMP.SET_MODE_FILTER, flags, base], 'seccomp(SECCOMP_SET_MODE_FILTER)');
  if (r !== 0n) {
    const why = args.tsync && r > 0n ? `thread ${r} could not be synchronised` : `${errnoName(Number(-r))}`;
    throw new CkptError('SYSCALL', `Cannot restore process ${ctx.pid}: installing a seccomp filter in thread ${ctx.remote.tid} failed (${why})`);
  }
}
