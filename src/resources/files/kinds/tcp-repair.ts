/**
 * Established TCP connections, with TCP_REPAIR. Not done yet: the dump refuses them.
 */
import type { InetAddr } from '../../../sys/inet.js';
import type { FdFacts } from '../facts.js';
import type { EntryOf, TcpRepairState } from '../schema.js';
import { dumpError, restoreError, type KindDumpContext, type KindRestoreContext } from './kind.js';

export function dumpEstablished(_dc: KindDumpContext, f: FdFacts, _s: { fd: number; local: InetAddr; peer: InetAddr }): TcpRepairState {
  throw dumpError(f, { code: 'UNSUPPORTED', reason: `established TCP connections are not supported yet (${f.link})` });
}

export function restoreEstablished(rc: KindRestoreContext, args: { e: EntryOf<'inet'>; fd: number }): void {
  throw restoreError(rc, { fd: args.e.fd, code: 'UNSUPPORTED', reason: 'established TCP connections are not supported yet' });
}
