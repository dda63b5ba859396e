import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeRegs, REGS_SIZE, signed } from '../../sys/index.js';
import { resumeRegs, rewoundRegs } from './cpu.js';

function stoppedIn(nr: bigint, rax: bigint) {
  const regs = decodeRegs(Buffer.alloc(REGS_SIZE));
  regs.orig_rax = nr;
  regs.rax = BigInt.asUintN(64, rax);
  regs.rip = 0x7f0000001002n; // just after the `syscall` instruction
  return regs;
}

test('a thread stopped in nanosleep (-ERESTART_RESTARTBLOCK) is rewound to run the call again', () => {
  const r = rewoundRegs(stoppedIn(35n, -516n));
  assert.equal(r.rax, 35n);
  assert.equal(r.rip, 0x7f0000001000n);
  assert.equal(signed(r.orig_rax), -1n, 'nothing left for the kernel to restart');
  for (const e of [-512n, -513n, -514n]) assert.equal(rewoundRegs(stoppedIn(7n, e)).rax, 7n);
});

test('a thread not in an interrupted syscall keeps its registers', () => {
  const saved = stoppedIn(1n, 5n);
  const r = rewoundRegs(saved);
  assert.equal(r.rax, 5n);
  assert.equal(r.rip, saved.rip);
  const notSyscall = stoppedIn(BigInt.asUintN(64, -1n), -516n);
  assert.equal(rewoundRegs(notSyscall).rip, notSyscall.rip, 'orig_rax -1: it was not in a syscall');
});

test('resumeRegs leaves restarts to the kernel but turns RESTARTBLOCK into a plain restart', () => {
  assert.equal(signed(resumeRegs(stoppedIn(35n, -516n)).rax), -513n);
  assert.equal(signed(resumeRegs(stoppedIn(7n, -512n)).rax), -512n);
});
