/**
 * Interface indexes saved in images (a packet socket's binding and memberships, multicast
 * memberships) are saved with the interface's name, and checked at restore: on another
 * machine, or after interfaces came and went, the same index may be another device.
 */
import { interfaceName } from '../../../sys/netdev.js';
import type { RestoreContext } from '../../types.js';
import { restoreError } from './kind.js';

/** `{ ifname }` of interface `ifindex` (0: any interface, no name). */
export function withIfname(ifindex: number): { ifname?: string } {
  const ifname = ifindex > 0 ? interfaceName(ifindex) : undefined;
  return ifname ? { ifname } : {};
}

/** Fails the restore of fd `fd` when an interface index no longer names the device it named at dump. */
export function checkInterfaces(ctx: RestoreContext, args: { fd: number; list: readonly { ifindex: number; ifname?: string }[] }): void {
  for (const { ifindex, ifname } of args.list) {
    if (ifname === undefined) continue;
    const now = interfaceName(ifindex);
    if (now !== ifname) {
      const is = now === undefined ? 'there is no such interface now' : `it is ${now} now`;
      throw restoreError(ctx, { fd: args.fd, code: 'FILE_CHANGED', reason: `interface ${ifindex} was ${ifname} at dump; ${is}` });
    }
  }
}
