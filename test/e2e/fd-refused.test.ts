/**
 * Kernel objects ckpt refuses (fd-refused.c): each dump fails with a message naming
 * the process, the fd and why, and the target runs on with its object still working.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dump } from '../../src/dump/dump.js';
import { kill, SIG } from '../../src/sys/index.js';
import { useCleanups } from '../helpers/cleanup.js';
import { startVictim } from '../helpers/victim.js';

const cleanups = useCleanups();

/** Where the memfd-mapped victim mapped its memfd, by pid. */
const mapped = new Map<number, string>();
/** The working directory of each victim, by pid. */
const dirs = new Map<number, string>();

const CASES: [string, (pid: number, fd: number) => string | RegExp][] = [
  ['userfaultfd', (pid, fd) => `Cannot dump fd ${fd} of process ${pid}: userfaultfd files are not supported: the ranges registered on it, their modes and the faults waiting on it are shown by no interface (anon_inode:[userfaultfd])`],
  ['io_uring', (pid, fd) => `Cannot dump fd ${fd} of process ${pid}: io_uring instances are not supported: their rings, registered files and buffers, and the requests in flight cannot be read or rebuilt from outside (anon_inode:[io_uring])`],
  ['bpf-map', (pid, fd) => `Cannot dump fd ${fd} of process ${pid}: BPF objects are not supported: maps, programs and links are loaded into the kernel and may be pinned or attached elsewhere; they are not the process's to recreate (anon_inode:bpf-map)`],
  ['perf_event', (pid, fd) => `Cannot dump fd ${fd} of process ${pid}: perf_event files are not supported: the counters, their groups and ring buffers cannot be saved and set back (anon_inode:[perf_event])`],
  ['tun', (pid, fd) => `Cannot dump fd ${fd} of process ${pid}: character device 10:200 (/dev/net/tun) is not supported: its driver may keep state in the open file (an interface, a connection, a read position) that a new open would not have`],
  ['memfd-mapped', (pid) => `Cannot dump process ${pid}: its writable shared mapping at 0x${mapped.get(pid)} of memfd /memfd:audit-sealed was made before F_SEAL_FUTURE_WRITE, which forbids making it again`],
  ['dnotify', (pid, fd) => `Cannot dump fd ${fd} of process ${pid}: its directory ${dirs.get(pid)} has an owner (pid ${pid}, signal 0): a dnotify watch (F_NOTIFY), which no interface shows`],
  ['memfd-hugetlb', (pid, fd) => `Cannot dump fd ${fd} of process ${pid}: it is a hugetlb memfd (MFD_HUGETLB), which is not supported yet (/memfd:audit-huge (deleted))`],
  // A SO_REUSEPORT group whose BPF program picks the socket: after the refusal the group still uses it.
  ['reuseport-cbpf', (pid, fd) => new RegExp(`^Cannot dump fd ${fd} of process ${pid}: its SO_REUSEPORT group has a BPF program choosing the socket \\(SO_ATTACH_REUSEPORT_CBPF/EBPF\\), which ckpt cannot read back \\(socket:\\[\\d+\\]\\)$`)],
  // A fired one-shot watch on a listener with nothing waiting: it stays disarmed.
  ['epoll-oneshot-listener', (pid, fd) => new RegExp(`^Cannot dump fd ${fd} of process ${pid}: its one-shot epoll watch on fd \\d+ fired and is disarmed, and its file is ready for no event`)],
  ['udp-corked', (pid, fd) => new RegExp(`^Cannot dump fd ${fd} of process ${pid}: .*\\d+ bytes of send buffer are in use \\(data appended under UDP_CORK or MSG_MORE`)],
  ['kmsg', (pid, fd) => `Cannot dump fd ${fd} of process ${pid}: character device 1:11 (/dev/kmsg) is not supported: its driver may keep state in the open file (an interface, a connection, a read position) that a new open would not have`],
];

for (const [what, message] of CASES) {
  test(`${what}: refused with its reason, and the process runs on`, async () => {
    const v = startVictim('fd-refused', { args: [what] });
    cleanups.push(() => v.cleanup());
    const m = await v.waitFor(/READY pid=\d+ fd=(-?\d+)/);
    const at = /MAPPED at=([0-9a-f]+)/.exec(v.output());
    if (at) mapped.set(v.pid, at[1]!);
    dirs.set(v.pid, v.dir);
    assert.throws(() => dump(v.pid, { imagesDir: cleanups.tempDir('ckpt-refused-img-') }), { code: 'UNSUPPORTED', message: message(v.pid, Number(m[1])) });
    kill(v.pid, SIG.SIGUSR1);
    await v.waitFor(new RegExp(`^(PASS|FAIL) ${what}`, 'm'));
    assert.match(v.output(), new RegExp(`^PASS ${what}$`, 'm'));
  });
}

test('an AIO context (io_setup ring) is refused, and the process runs on', async () => {
  const v = startVictim('fd-refused', { args: ['aio'] });
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY pid=\d+/);
  assert.throws(() => dump(v.pid, { imagesDir: cleanups.tempDir('ckpt-refused-img-') }), {
    code: 'UNSUPPORTED',
    message: new RegExp(`^Cannot dump process ${v.pid}: it has an AIO context \\(io_setup\\) whose ring is mapped at 0x[0-9a-f]+; AIO contexts are not supported yet$`),
  });
  kill(v.pid, SIG.SIGUSR1);
  await v.waitFor(/^(PASS|FAIL) aio/m);
  assert.match(v.output(), /^PASS aio$/m);
});
