import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeRegs, encodeRegs, REG_NAMES, REGS_SIZE, signed } from './regs.js';
import { decodeIovecs, encodeIovecs } from './iovec.js';
import { decodeSiginfo, SIGINFO_SIZE } from './siginfo.js';
import { CLONE_ARGS_SIZE, decodeCloneArgs, encodeCloneArgs } from './clone-args.js';

test('user_regs_struct is 27 u64 in kernel order and round-trips', () => {
  assert.equal(REGS_SIZE, 216);
  const buf = Buffer.alloc(REGS_SIZE);
  for (let i = 0; i < 27; i++) buf.writeBigUInt64LE(BigInt(i) * 0x1111n, i * 8);
  const regs = decodeRegs(buf);
  assert.equal(regs.r15, 0n);
  assert.equal(regs.rip, 16n * 0x1111n);
  assert.equal(regs.orig_rax, 15n * 0x1111n);
  assert.equal(regs.gs, 26n * 0x1111n);
  assert.deepEqual(encodeRegs(regs), buf);
  assert.equal(REG_NAMES.indexOf('fs_base'), 21);
});

test('negative register values are stored as two\'s complement and read back signed', () => {
  const regs = decodeRegs(Buffer.alloc(REGS_SIZE));
  regs.orig_rax = -1n;
  const buf = encodeRegs(regs);
  assert.equal(buf.readBigUInt64LE(15 * 8), 0xffffffffffffffffn);
  assert.equal(signed(decodeRegs(buf).orig_rax), -1n);
  assert.throws(() => decodeRegs(Buffer.alloc(8)), RangeError);
});

test('iovec arrays round-trip', () => {
  const iovs = [{ base: 0x7fff0000n, len: 4096 }, { base: 0xffffffffff600000n, len: 1 }];
  const buf = encodeIovecs(iovs);
  assert.equal(buf.length, 32);
  assert.deepEqual(decodeIovecs(buf), iovs);
});

test('siginfo head is decoded and the raw bytes kept', () => {
  const buf = Buffer.alloc(SIGINFO_SIZE);
  buf.writeInt32LE(10, 0);
  buf.writeInt32LE(0, 4);
  buf.writeInt32LE(-1 /* SI_QUEUE */, 8);
  buf.writeInt32LE(1234, 16);
  buf.writeUInt32LE(1000, 20);
  const si = decodeSiginfo(buf);
  assert.deepEqual([si.signo, si.code, si.pid, si.uid], [10, -1, 1234, 1000]);
  assert.deepEqual(si.raw, buf);
});

test('clone_args is 88 bytes with set_tid at offset 64', () => {
  assert.equal(CLONE_ARGS_SIZE, 88);
  const buf = encodeCloneArgs({ exitSignal: 17n, setTid: 0x1000n, setTidSize: 1n });
  assert.equal(buf.readBigUInt64LE(32), 17n);
  assert.equal(buf.readBigUInt64LE(64), 0x1000n);
  assert.equal(buf.readBigUInt64LE(72), 1n);
  assert.equal(decodeCloneArgs(buf).setTid, 0x1000n);
});
