/**
 * CRIU's options that ckpt knows but has no option of its own for: each is accepted as a
 * no-op (ckpt always does the thing, or the thing cannot arise) or refused with the
 * reason, so that a CRIU command line never ends in "unknown option". The options ckpt
 * honours are defined by the commands themselves (commands/*.ts). The table in
 * docs/cli.md, "CRIU's options", is this list (test/e2e/cli-criu.test.ts checks it).
 */
import { Option, type Command } from 'commander';
import { CkptError } from '../common/errors.js';

export type CriuCommand = 'dump' | 'restore' | 'check';

export interface CriuOption {
  /** commander flags: `-l, --file-locks`, `--ghost-limit <size>`, `--cpu-cap [cap]`. */
  flags: string;
  on: readonly CriuCommand[];
  /** What ckpt does instead (no-op), or why it refuses. */
  note: string;
  /** Refused (always, or for the values this returns a reason for). */
  refuse?: true | ((value: string) => string | undefined);
}

// CRIU's parser takes every option with every command (a config file serves dump and
// restore alike), so ckpt knows each on both: one that only means something to the
// other command is a no-op there.
const DR: readonly CriuCommand[] = ['dump', 'restore'];
const D: readonly CriuCommand[] = ['dump'];
const R: readonly CriuCommand[] = ['restore'];
const ALL: readonly CriuCommand[] = ['dump', 'restore', 'check'];

const INCREMENTAL = 'deduplication of parent images is not supported: each incremental dump keeps its parent\'s images as they are';
const PS_TLS = 'ckpt\'s page server authenticates with a shared token file, --auth-token (docs/security.md), not TLS certificates';
const MOUNTS = 'mounts are not supported: ckpt neither dumps nor restores a mount namespace';
const CGROUPS = 'cgroup properties (limits, controllers) are not saved: a restore puts each process back into its saved cgroup, which must exist (--manage-cgroups none|soft, the default), or leaves the tree in ckpt\'s (ignore)';
const NAMESPACES = 'namespaces are not supported: the processes are restored in ckpt\'s namespaces';

/** --external TYPE[ID]:VALUE, by type. */
function externalReason(value: string): string {
  const type = /^([a-z]+)\[/.exec(value)?.[1] ?? value;
  const why: Record<string, string> = {
    mnt: MOUNTS,
    dev: MOUNTS,
    tty: 'external terminals are not supported; a shell job\'s terminal is taken over with --shell-job',
    file: 'external files are not supported; a file reachable by its path is saved as any file',
    unix: 'external unix sockets are not supported yet',
    veth: 'network devices are not supported',
    macvlan: 'network devices are not supported',
    netdev: 'network devices are not supported',
  };
  return `${type}[…]: ${why[type] ?? 'this external resource is not supported'}`;
}

export const CRIU_OPTIONS: readonly CriuOption[] = [
  // Generic
  { flags: '--no-default-config', on: ALL, note: 'no-op: ckpt reads no default configuration file (only the one --config names)' },
  { flags: '--close <fd>', on: DR, note: 'no-op: ckpt leaves no fd of its own to the restored processes' },
  { flags: '-L, --libdir <path>', on: DR, note: 'no-op: ckpt has no plugins' },
  { flags: '--log-pid', on: DR, note: 'no-op: one log for the whole tree' },
  { flags: '--unprivileged', on: DR, note: 'no-op: what works without root is what `ckpt check` reports' },
  { flags: '--allow-uprobes', on: DR, note: 'no-op' },
  { flags: '--deprecated', on: ALL, note: 'no-op' },
  { flags: '--stream', on: DR, note: 'image streaming (criu-image-streamer) is not supported', refuse: true },
  { flags: '--prev-images-dir <dir>', on: R, note: 'no-op at restore: an incremental dump names its parent images itself (docs/image-format.md)' },
  { flags: '--track-mem', on: R, note: 'no-op at restore' },
  { flags: '--pre-dump-mode <mode>', on: DR, note: 'no-op: a pre-dump reads the pages through /proc/PID/mem once the tree runs again (CRIU\'s read mode)' },
  { flags: '--auto-dedup', on: DR, note: INCREMENTAL, refuse: true },
  { flags: '--lazy-pages', on: ['dump'], note: 'a dump for a lazy restore is a plain dump: use restore --lazy-pages (pages served from the images directory), or serve the dump\'s directory with page-server --lazy-pages and restore --lazy-pages --page-server elsewhere', refuse: true },
  // Page server
  { flags: '--ps-socket <fd>', on: DR, note: 'ckpt connects to the page server itself (--page-server --address --port): it takes no socket from its caller', refuse: true },
  { flags: '--tls', on: DR, note: PS_TLS, refuse: true },
  { flags: '--tls-cacert <file>', on: DR, note: PS_TLS, refuse: true },
  { flags: '--tls-cacrl <file>', on: DR, note: PS_TLS, refuse: true },
  { flags: '--tls-cert <file>', on: DR, note: PS_TLS, refuse: true },
  { flags: '--tls-key <file>', on: DR, note: PS_TLS, refuse: true },
  { flags: '--tls-no-cn-verify', on: DR, note: PS_TLS, refuse: true },
  // Freezing and collecting
  { flags: '--freeze-cgroup <path>', on: DR, note: 'no-op: ckpt freezes the tree with ptrace, not the cgroup freezer' },
  { flags: '--evasive-devices', on: DR, note: 'no-op: a device file is reopened by its saved path' },
  { flags: '--force-irmap', on: DR, note: 'no-op: inotify and fanotify are not supported (such an fd fails the dump)' },
  { flags: '--irmap-scan-path <path>', on: DR, note: 'no-op: inotify and fanotify are not supported (such an fd fails the dump)' },
  // Files
  { flags: '-l, --file-locks', on: DR, note: 'no-op: file locks are always saved and restored' },
  { flags: '--link-remap', on: DR, note: 'no-op: a deleted open file is always saved with its content and recreated nameless' },
  { flags: '--ghost-limit <size>', on: DR, note: 'no-op: a deleted open file is saved whatever its size (sparse)' },
  { flags: '--ghost-fiemap', on: DR, note: 'no-op: a deleted open file is always saved sparse (SEEK_DATA/SEEK_HOLE)' },
  { flags: '--file-validation <method>', on: DR, note: 'no-op: a mapped file is checked by its size and its build ID (ELF) or SHA-1' },
  { flags: '--skip-file-rwx-check', on: DR, note: 'no-op: ckpt does not compare file permission bits' },
  { flags: '--external <res>', on: DR, note: 'refused: mnt, dev, tty, file, unix, veth, macvlan, netdev are not supported', refuse: externalReason },
  // CPU
  { flags: '--cpu-cap [cap]', on: DR, note: 'no-op: the saved xsave area is given to the kernel as it is' },
  // Mounts and namespaces
  { flags: '-r, --root <path>', on: DR, note: MOUNTS, refuse: true },
  { flags: '-M, --ext-mount-map <map>', on: DR, note: MOUNTS, refuse: true },
  { flags: '--skip-mnt <path>', on: DR, note: 'no-op: no mount is dumped' },
  { flags: '--enable-fs <names>', on: DR, note: 'no-op: no mount is dumped' },
  { flags: '--enable-external-sharing', on: DR, note: 'no-op: no mount is dumped' },
  { flags: '--enable-external-masters', on: DR, note: 'no-op: no mount is dumped' },
  { flags: '--mntns-compat-mode', on: DR, note: 'no-op: no mount namespace is restored' },
  { flags: '--lsm-profile <type:name>', on: DR, note: 'LSM profiles are not restored', refuse: true },
  { flags: '--lsm-mount-context <ctx>', on: DR, note: MOUNTS, refuse: true },
  { flags: '--empty-ns <ns>', on: DR, note: NAMESPACES, refuse: true },
  { flags: '-J, --join-ns <ns>', on: DR, note: NAMESPACES, refuse: true },
  { flags: '--veth-pair <pair>', on: DR, note: 'network devices are not supported', refuse: true },
  { flags: '--weak-sysctls', on: DR, note: 'no-op: no sysctl is restored' },
  // Cgroups
  { flags: '--manage-cgroups [mode]', on: DR, note: `none and soft (the default): each process goes back into its saved cgroup; ignore: the tree stays in ckpt's; props, full, strict refused: ${CGROUPS}`, refuse: (v) => (['', 'ignore', 'none', 'soft'].includes(v) ? undefined : CGROUPS) },
  { flags: '--cgroup-root <root>', on: DR, note: CGROUPS, refuse: true },
  { flags: '--cgroup-props <spec>', on: DR, note: CGROUPS, refuse: true },
  { flags: '--cgroup-props-file <file>', on: DR, note: CGROUPS, refuse: true },
  { flags: '--cgroup-dump-controller <name>', on: DR, note: CGROUPS, refuse: true },
  { flags: '--cgroup-yard <path>', on: DR, note: CGROUPS, refuse: true },
  // Restore
  { flags: '-S, --restore-sibling', on: DR, note: 'the restored root is always ckpt\'s child (reparented to init when ckpt exits with -d)', refuse: true },
  { flags: '--exec-cmd', on: DR, note: 'running a command as the parent of the restored tree is not supported', refuse: true },
  // The other command's options
  { flags: '-d, --restore-detached', on: D, note: 'no-op on dump (a restore option)' },
  { flags: '--inherit-fd <fd[N]:resource>', on: D, note: 'no-op on dump (a restore option)' },
  { flags: '-t, --tree <pid>', on: R, note: 'no-op on restore: the images name the tree' },
  { flags: '-R, --leave-running', on: R, note: 'no-op on restore (a dump option)' },
  { flags: '--timeout <seconds>', on: R, note: 'no-op on restore (a dump option)' },
  { flags: '--skip-in-flight', on: R, note: 'no-op on restore (a dump option)' },
];

/** `--foo-bar <x>` → `fooBar`, as commander names it. */
export function attributeOf(flags: string): string {
  return new Option(flags).attributeName();
}

/** Adds the CRIU options of `cmd` (hidden from --help: docs/cli.md lists them) and refuses the refused ones before the action runs. */
export function addCriuOptions(command: Command, cmd: CriuCommand): void {
  const mine = CRIU_OPTIONS.filter((o) => o.on.includes(cmd));
  for (const o of mine) command.addOption(new Option(o.flags, o.note).hideHelp());
  command.hook('preAction', (_this, action) => refuseGiven(action.opts(), { cmd, options: mine }));
}

/** Throws for the first refused option given in `opts`. */
export function refuseGiven(opts: Record<string, unknown>, args: { cmd: string; options: readonly CriuOption[] }): void {
  for (const o of args.options) {
    const v = opts[attributeOf(o.flags)];
    if (!o.refuse || v === undefined || v === false) continue;
    const reason = o.refuse === true ? o.note : o.refuse(v === true ? '' : String(v));
    if (reason === undefined) continue;
    const name = o.flags.replace(/^-\w, /, '').split(' ')[0];
    throw new CkptError('UNSUPPORTED', `Cannot ${args.cmd} with ${name}: ${reason}`);
  }
}

/**
 * CRIU lets every boolean option be negated with --no-: adds a hidden --no-NAME for
 * each boolean long option of `command` that has none (its value is then false,
 * which every command reads as "not given").
 */
export function addNegations(command: Command): void {
  const have = new Set(command.options.map((o) => o.long));
  for (const o of [...command.options]) {
    if (!o.long || o.negate || o.required || o.optional || o.long === '--help') continue;
    const neg = `--no-${o.long.slice(2)}`;
    if (have.has(neg)) continue;
    command.addOption(new Option(neg).hideHelp());
    have.add(neg);
  }
}

/** CRIU commands ckpt refuses, with the reason. */
export const CRIU_COMMANDS: Readonly<Record<string, string>> = {
  service: 'the RPC service is not supported: use the ckpt library (import { dump, restore } from \'ckpt\') or this command line',
  swrk: 'the RPC service is not supported: use the ckpt library or this command line',
  dedup: INCREMENTAL,
  cpuinfo: 'no cpuinfo image is written: the saved xsave area is given to the kernel as it is',
  exec: 'CRIU\'s exec is not supported',
};

/** Registers each refused CRIU command: any arguments, one line saying why. */
export function addCriuCommands(program: Command): void {
  for (const [name, reason] of Object.entries(CRIU_COMMANDS)) {
    program
      .command(name, { hidden: true })
      .description(`CRIU's ${name}: not supported`)
      .allowUnknownOption()
      .allowExcessArguments()
      .helpOption(false)
      .action(() => {
        throw new CkptError('UNSUPPORTED', `Cannot ${name}: ${reason}`);
      });
  }
}

/**
 * CRIU's `restore --exec-cmd -- CMD ARGS` would end in commander's "too many arguments"
 * before any option is looked at: refused here first.
 */
export function refuseExecCmd(argv: readonly string[]): void {
  const end = argv.indexOf('--');
  if (argv[0] !== 'restore' || !(end < 0 ? argv : argv.slice(0, end)).includes('--exec-cmd')) return;
  const o = CRIU_OPTIONS.find((x) => x.flags === '--exec-cmd')!;
  refuseGiven({ execCmd: true }, { cmd: 'restore', options: [o] });
}
