import { test } from 'node:test';
import assert from 'node:assert/strict';
import { REG_NAMES, type Regs } from '../sys/index.js';
import { buildSigframe, rewoundRegs, sigframeSize } from './frame.js';

const regs = (over: Partial<Regs> = {}): Regs => ({ ...(Object.fromEntries(REG_NAMES.map((n, i) => [n, BigInt(i + 1) * 0x1000n])) as Regs), ...over });

test('an interrupted syscall is rewound to run again; anything else is left as it is', () => {
  const inCall = rewoundRegs(regs({ rax: BigInt.asUintN(64, -516n), orig_rax: 35n, rip: 0x401002n }));
  assert.equal(inCall.rax, 35n);
  assert.equal(inCall.rip, 0x401000n);
  assert.equal(inCall.orig_rax, BigInt.asUintN(64, -1n));
  const user = rewoundRegs(regs({ rax: 7n, orig_rax: BigInt.asUintN(64, -1n), rip: 0x401002n }));
  assert.equal(user.rax, 7n);
  assert.equal(user.rip, 0x401002n);
  const failed = rewoundRegs(regs({ rax: BigInt.asUintN(64, -4n), orig_rax: 0n, rip: 0x401002n }));
  assert.equal(failed.rip, 0x401002n, 'EINTR is a result, not a restart');
});

test('the frame holds the registers, mask and xsave area where rt_sigreturn looks for them', () => {
  const xstate = Buffer.alloc(2432, 0xab);
  xstate.writeBigUInt64LE(0xe7n, 464); // ptrace puts XCR0 there
  const at = 0x7ffd0000n;
  const r = regs({ rip: 0x401234n, rsp: 0x7ffd1000n, orig_rax: BigInt.asUintN(64, -1n), cs: 0x33n, ss: 0x2bn });
  const f = buildSigframe({ at, regs: r, mask: 0x1234n, xstate });
  assert.equal(f.length, sigframeSize(2432));
  assert.equal(f.length % 64, 0);
  assert.equal(f.readBigUInt64LE(8), 7n, 'uc_flags');
  assert.equal(f.readUInt32LE(24 + 8), 3, 'an invalid ss_flags leaves the altstack alone');
  const mc = 48;
  assert.equal(f.readBigUInt64LE(mc + 12 * 8), r.rdx);
  assert.equal(f.readBigUInt64LE(mc + 15 * 8), r.rsp);
  assert.equal(f.readBigUInt64LE(mc + 16 * 8), r.rip);
  assert.equal(f.readUInt16LE(mc + 144), 0x33);
  assert.equal(f.readUInt16LE(mc + 150), 0x2b);
  assert.equal(f.readBigUInt64LE(mc + 184), at + 512n, 'fpstate pointer');
  assert.equal(f.readBigUInt64LE(304), 0x1234n, 'uc_sigmask');
  assert.equal(f.readUInt32LE(512 + 464), 0x46505853, 'FP_XSTATE_MAGIC1');
  assert.equal(f.readUInt32LE(512 + 468), 2436, 'extended_size');
  assert.equal(f.readBigUInt64LE(512 + 472), 0xe7n, 'xfeatures');
  assert.equal(f.readUInt32LE(512 + 480), 2432, 'xstate_size');
  assert.equal(f.readUInt32LE(512 + 2432), 0x46505845, 'FP_XSTATE_MAGIC2');
  assert.equal(f[512 + 100], 0xab, 'the xsave area itself');
  assert.throws(() => buildSigframe({ at: at + 8n, regs: r, mask: 0n, xstate }), /aligned/);
});
