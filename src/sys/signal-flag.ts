/**
 * Catching signals into a flag while Node's own handlers cannot run. ckpt's dump and
 * restore are synchronous (ptrace is per thread), so the event loop — and with it
 * every `process.on('SIGINT')` listener — is stopped, and Node has other threads, so
 * blocking a signal in ours does not keep a process-directed one from killing us.
 *
 * The handler here is native: a few bytes of machine code in a page of our own that
 * store the signal number in a flag page and return, installed for the whole process
 * with rt_sigaction, whichever thread the kernel picks runs it. The synchronous code
 * reads the flag through a koffi view of that page (a plain memory read). No policy
 * here: which signals, and what to do once one came, is infect/interrupt.ts.
 */
import { call } from './call.js';
import { addressOf, viewMemory } from './native.js';
import { NR } from './nr.js';

const PAGE = 4096;
const SA_RESTART = 0x10000000n;
const SA_RESTORER = 0x04000000n;
/** struct sigaction as the kernel takes it on x86_64: handler, flags, restorer, mask. */
const SIGACTION_SIZE = 32;

interface Native {
  /** byte 0: the last signal caught; byte N: signal N was caught. */
  flags: Uint8Array;
  handler: bigint;
  restorer: bigint;
}

let native: Native | undefined;

/**
 * handler(sig):  movabs rax, FLAGS; mov [rax], dil; mov byte [rax+rdi], 1; ret
 * restorer:      mov eax, 15 (rt_sigreturn); syscall
 * SA_RESTORER is required on x86_64: the handler returns through it.
 */
function code(flags: bigint): { bytes: Buffer; restorerAt: number } {
  const h = Buffer.from([0x48, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0x40, 0x88, 0x38, 0xc6, 0x04, 0x38, 0x01, 0xc3]);
  h.writeBigUInt64LE(flags, 2);
  const r = Buffer.from([0xb8, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05]);
  return { bytes: Buffer.concat([h, Buffer.alloc(32 - h.length, 0xcc), r]), restorerAt: 32 };
}

/** Maps the flag page and the code page once per process (they are never unmapped: a late signal may still run the code). */
function load(): Native {
  if (native) return native;
  const base = call(NR.mmap, [0, 2 * PAGE, 3 /* PROT_READ|WRITE */, 0x22 /* MAP_PRIVATE|ANONYMOUS */, -1, 0], { name: 'mmap(signal flag)' });
  const text = base + BigInt(PAGE);
  const { bytes, restorerAt } = code(base);
  viewMemory(text, PAGE).set(bytes);
  call(NR.mprotect, [text, PAGE, 5 /* PROT_READ|EXEC */], { name: 'mprotect(signal handler)' });
  native = { flags: viewMemory(base, PAGE), handler: text, restorer: text + BigInt(restorerAt) };
  return native;
}

/** A signal's disposition as the kernel returned it, to put back byte for byte. */
export type SavedAction = Buffer;

function sigaction(sig: number, args: { act?: Buffer; old?: Buffer }): void {
  const a = args.act ? addressOf(args.act) : 0n;
  const o = args.old ? addressOf(args.old) : 0n;
  call(NR.rt_sigaction, [sig, a, o, 8], { name: `rt_sigaction(${sig})` });
}

/** The current disposition of `sig` (handler, flags, restorer, mask). */
export function getAction(sig: number): SavedAction {
  const old = Buffer.alloc(SIGACTION_SIZE);
  sigaction(sig, { old });
  return old;
}

/** True when the saved disposition is SIG_IGN. */
export function isIgnored(a: SavedAction): boolean {
  return a.readBigUInt64LE(0) === 1n;
}

/** Installs the flag handler for `sig`; returns the disposition it replaced. */
export function catchIntoFlag(sig: number): SavedAction {
  const n = load();
  const act = Buffer.alloc(SIGACTION_SIZE);
  act.writeBigUInt64LE(n.handler, 0);
  act.writeBigUInt64LE(SA_RESTART | SA_RESTORER, 8);
  act.writeBigUInt64LE(n.restorer, 16);
  const old = Buffer.alloc(SIGACTION_SIZE);
  sigaction(sig, { act, old });
  return old;
}

/** Puts back a disposition saved by catchIntoFlag or getAction. */
export function setAction(sig: number, saved: SavedAction): void {
  sigaction(sig, { act: saved });
}

/** The last signal caught since clearCaught (0: none); one memory read. */
export function lastCaught(): number {
  return native ? native.flags[0]! : 0;
}

/** The signals caught since clearCaught, in signal-number order. */
export function caughtSignals(): number[] {
  if (!native) return [];
  const out: number[] = [];
  for (let s = 1; s < 65; s++) if (native.flags[s]) out.push(s);
  return out;
}

export function clearCaught(): void {
  native?.flags.fill(0, 0, 65);
}
