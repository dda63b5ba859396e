import type { Command } from 'commander';
import type { ProbeResult } from '../../api/index.js';
import { CkptError } from '../../common/errors.js';
import { addCriuOptions } from '../criu-options.js';
import { printJson, println, table } from '../output.js';
import type { CliCommand } from './types.js';

/** CRIU's names (`criu check --feature list`) for what a ckpt probe checks. */
const CRIU_NAMES: Readonly<Record<string, string>> = {
  uffd: 'userfaultfd',
  'uffd-noncoop': 'userfaultfd',
  timens: 'time_ns',
  kcmp_epoll: 'kcmp',
  can_map_vdso: 'vdso',
  get_rseq_conf: 'rseq',
};

/** CRIU's other features: ckpt does not use them, so there is nothing to check. */
const CRIU_ONLY = new Set([
  'mem_dirty_track', 'aio_remap', 'timerfd', 'tun_ns', 'userns', 'fdinfo_lock', 'seccomp_suspend', 'cgroupns', 'tcp_half_closed',
  'compat_cr', 'sk_ns', 'sk_unix_file', 'net_diag_raw', 'link_nsid', 'external_net_ns', 'newifindex', 'has_ipt_legacy', 'ns_pid',
  'apparmor_stacking', 'network_lock_nftables', 'sockopt_buf_lock', 'memfd_hugetlb', 'openat2', 'ipv6_freebind', 'timer_cr_ids',
  'overlayfs_maps', 'breakpoints', 'pagemap_scan_guard_pages',
]);

interface CheckFlags {
  feature?: string;
  json?: boolean;
  all?: boolean;
  extra?: boolean;
  experimental?: boolean;
}

function row(r: ProbeResult): string[] {
  if (r.ok) return ['ok', r.name, r.detail];
  return [r.required ? 'MISSING' : 'warning', r.name, `${r.detail}; disables ${r.disables}`];
}

/** What a user can do here, from the probes: dump needs ptrace and memory access, restore old PIDs too. */
function summary(results: ProbeResult[]): string[] {
  const ok = (name: string) => results.find((r) => r.name === name)?.ok ?? false;
  const canDump = ok('ptrace') && ok('process_vm_readv') && ok('pidfd_getfd');
  const canRestore = canDump && ok('clone3_set_tid') && (ok('cap_checkpoint_restore') || ok('cap_sys_admin'));
  const uid = process.geteuid?.() ?? 0;
  const who = uid === 0 ? 'as root' : `as uid ${uid}, not root`;
  const own = uid === 0 ? '' : ' (your own processes only)';
  return [
    `Here, ${who}: dump ${canDump ? `works${own}` : 'does not work'}; restore ${canRestore ? `works${own}` : 'does not work (it needs CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN to give processes their old PIDs)'}.`,
  ];
}

export const checkCommand: CliCommand = {
  name: 'check',
  register(program: Command) {
    const cmd = program
      .command('check')
      .description('check what this kernel and our privileges allow')
      .option('--feature <name>', 'run one probe only (ckpt\'s or CRIU\'s name; "list" lists them); exit 0 if it passes, 1 if not')
      .option('--extra', 'also fail (exit 1) when an optional feature is missing')
      .option('--experimental', 'as --extra')
      .option('--all', 'as --extra')
      .option('--json', 'print the results as JSON')
      .option('--config <file>', 'read options from FILE first (CRIU\'s format)')
      // Loaded when the command runs: --help and other commands do not pay for it.
      .action(async (opts: CheckFlags) => {
        const { check, probeNames } = await import('../../api/check/index.js');
        if (opts.feature === 'list') {
          println([...probeNames(), ...Object.keys(CRIU_NAMES)].join(' '));
          return;
        }
        if (opts.feature !== undefined && CRIU_ONLY.has(opts.feature)) {
          throw new CkptError('USAGE', `Cannot check feature "${opts.feature}": CRIU's feature, which ckpt does not use; ckpt's features: ${probeNames().join(', ')}`);
        }
        const feature = opts.feature === undefined ? undefined : CRIU_NAMES[opts.feature] ?? opts.feature;
        const report = check({ feature });
        const strict = opts.all || opts.extra || opts.experimental;
        const ok = report.ok && (!strict || report.results.every((r) => r.ok));
        if (!ok) process.exitCode = 1;
        if (opts.json) {
          printJson(report);
          return;
        }
        for (const line of table(report.results.map(row))) println(line);
        if (feature !== undefined) {
          println(report.ok ? `${opts.feature} is supported.` : `${opts.feature} is missing.`);
          return;
        }
        const missing = report.results.filter((r) => !r.ok && r.required);
        const optional = report.results.filter((r) => !r.ok && !r.required);
        if (missing.length > 0) println(`Does not look good: ckpt cannot work here: ${missing.map((r) => r.name).join(', ')} missing`);
        else if (strict && optional.length > 0) println(`Looks good but ${optional.map((r) => r.name).join(', ')} missing (see above what each disables).`);
        else println('Looks good.');
        for (const line of summary(report.results)) println(line);
      });
    addCriuOptions(cmd, 'check');
  },
};
