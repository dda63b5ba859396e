/** Probes that act on a scratch child process: ptrace, rseq, remote memory, pidfds, kcmp. */
import { readFileSync } from 'node:fs';
import { closeFd, getpid, kcmp, pidfdGetfd, pidfdOpen, ptrace, readMemory } from '../../sys/index.js';
import type { Probe } from './types.js';

export const ptraceProbe: Probe = {
  name: 'ptrace',
  required: true,
  disables: 'everything: freezing and inspecting the target tree',
  run(ctx) {
    const pid = ctx.stoppedChild();
    return `PTRACE_SEIZE + PTRACE_INTERRUPT stopped process ${pid}`;
  },
};

export const rseqProbe: Probe = {
  name: 'rseq',
  required: false,
  disables: 'saving and restoring restartable-sequence (rseq) registrations',
  run(ctx) {
    const cfg = ptrace.getRseqConfiguration(ctx.stoppedChild());
    return cfg.abiPointer === 0n
      ? 'PTRACE_GET_RSEQ_CONFIGURATION works (the probe process has no rseq area)'
      : `PTRACE_GET_RSEQ_CONFIGURATION works (rseq area of ${cfg.abiSize} bytes, signature 0x${cfg.signature.toString(16)})`;
  },
};

export const vmReadProbe: Probe = {
  name: 'process_vm_readv',
  required: true,
  disables: 'dumping memory',
  run(ctx) {
    const pid = ctx.childPid();
    // The first mapping is the executable's ELF header: readable, and starts with \x7fELF.
    const first = readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n')[0] ?? '';
    const start = BigInt(`0x${first.split('-')[0]}`);
    const data = readMemory(pid, start, 4);
    if (data.toString('latin1') !== '\x7fELF') throw new Error(`read 4 bytes at 0x${start.toString(16)} but they are not an ELF header`);
    return `read process ${pid} memory at 0x${start.toString(16)}`;
  },
};

export const pidfdProbe: Probe = {
  name: 'pidfd_getfd',
  required: true,
  disables: 'dumping file descriptors (pipes, sockets, file offsets)',
  run(ctx) {
    const pid = ctx.childPid();
    const pidfd = pidfdOpen(pid);
    try {
      closeFd(pidfdGetfd(pidfd, 0, { pid }));
    } finally {
      closeFd(pidfd);
    }
    return `pidfd_open + pidfd_getfd copied fd 0 of process ${pid}`;
  },
};

export const kcmpProbe: Probe = {
  name: 'kcmp',
  required: true,
  disables: 'finding resources shared between processes (fd tables, memory, open files)',
  run(ctx) {
    const self = getpid();
    if (kcmp({ type: 'VM', pid1: self, pid2: self }) !== 0) throw new Error('kcmp(KCMP_VM) of this process with itself is not 0');
    if (kcmp({ type: 'FILE', pid1: self, pid2: self, idx1: 0, idx2: 0 }) !== 0) throw new Error('kcmp(KCMP_FILE) of fd 0 with itself is not 0');
    const other = ctx.childPid();
    if (kcmp({ type: 'VM', pid1: self, pid2: other }) === 0) throw new Error(`kcmp(KCMP_VM) says process ${other} shares our memory`);
    return 'kcmp orders VM and FILE objects';
  },
};
