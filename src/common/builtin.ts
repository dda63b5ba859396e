// Node built-in modules loaded on first use instead of at start-up. A CLI run pays for
// every module its bundle loads (node:crypto ~3 ms, node:child_process with net and
// dgram ~3 ms on this machine), and a small dump or restore needs neither
// (docs/performance.md, "CLI start-up").
import { createRequire } from 'node:module';
import type * as ChildProcess from 'node:child_process';
import type * as Crypto from 'node:crypto';

let req: NodeJS.Require | undefined;

function load<T>(id: string): T {
  // process.getBuiltinModule: Node >= 20.16; createRequire before that.
  if (typeof process.getBuiltinModule === 'function') return process.getBuiltinModule(id) as T;
  req ??= createRequire('/');
  return req(id) as T;
}

/** node:crypto, loaded when first needed. */
export function lazyCrypto(): typeof Crypto {
  return load<typeof Crypto>('node:crypto');
}

/** node:child_process, loaded when first needed. */
export function lazyChildProcess(): typeof ChildProcess {
  return load<typeof ChildProcess>('node:child_process');
}
