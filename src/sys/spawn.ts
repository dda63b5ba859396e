/**
 * Starting a program without fork: glibc's posix_spawn runs the child on our memory
 * (clone with CLONE_VM|CLONE_VFORK) until it execs. A fork would make every writable
 * page of ckpt copy-on-write for that moment, and each page ckpt writes afterwards (its
 * buffers, the JS heap) would then cost a fault: on this VM ~4 ms per MiB
 * (docs/performance.md, "h-check: the blank's fork"). The child gets /dev/null on 0-2,
 * no other fd, every signal at its default and none blocked (as Node's spawn does).
 * Node does not know the child: its caller reaps it (wait4).
 */
import { SysError } from './error.js';
import { addressOf, libcSpawn } from './native.js';

const POSIX_SPAWN_SETSIGDEF = 0x04;
const POSIX_SPAWN_SETSIGMASK = 0x08;
const O_RDWR = 2;

function check(name: string, err: number): void {
  if (err !== 0) throw new SysError(name, err);
}

const cString = (s: string) => Buffer.from(`${s}\0`);

/** Runs `path` with argv (argv[0] included), an empty environment and /dev/null on 0-2; returns its pid. */
export function spawnQuiet(path: string, argv: readonly string[]): number {
  // glibc's posix_spawn_file_actions_t is 80 bytes and posix_spawnattr_t 336: room to spare.
  const actions = Buffer.alloc(256);
  const attr = Buffer.alloc(512);
  const allSignals = Buffer.alloc(128, 0xff);
  const noSignals = Buffer.alloc(128);
  const devNull = cString('/dev/null');
  const file = cString(path);
  const args = argv.map(cString);
  const argvBuf = Buffer.alloc(8 * (args.length + 1));
  args.forEach((a, i) => argvBuf.writeBigUInt64LE(addressOf(a), 8 * i));
  const envBuf = Buffer.alloc(8);
  const a = addressOf(actions);
  const at = addressOf(attr);
  check('posix_spawn_file_actions_init', libcSpawn.actionsInit(a));
  try {
    for (const fd of [0, 1, 2]) check('posix_spawn_file_actions_addopen', libcSpawn.actionsOpen(a, fd, addressOf(devNull), O_RDWR, 0));
    check('posix_spawn_file_actions_addclosefrom_np', libcSpawn.actionsCloseFrom(a, 3));
    check('posix_spawnattr_init', libcSpawn.attrInit(at));
    try {
      check('posix_spawnattr_setflags', libcSpawn.attrFlags(at, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK));
      check('posix_spawnattr_setsigdefault', libcSpawn.attrDefault(at, addressOf(allSignals)));
      check('posix_spawnattr_setsigmask', libcSpawn.attrMask(at, addressOf(noSignals)));
      const pid = [0];
      check('posix_spawn', libcSpawn.spawn(pid, addressOf(file), a, at, addressOf(argvBuf), addressOf(envBuf)));
      // Kept referenced up to here: the child read them before posix_spawn returned.
      void [args, devNull, file, argvBuf, envBuf, allSignals, noSignals];
      return pid[0]!;
    } finally {
      libcSpawn.attrDestroy(at);
    }
  } finally {
    libcSpawn.actionsDestroy(a);
  }
}
