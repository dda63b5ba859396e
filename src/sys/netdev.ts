/**
 * Network interfaces by index: the name SIOCGIFNAME gives, so that an index saved in
 * an image (a packet socket's binding, a multicast membership) can be checked to mean
 * the same device at restore.
 */
import { call, callNum } from './call.js';
import { addressOf } from './native.js';
import { NR } from './nr.js';

const SIOCGIFNAME = 0x8910;

/** The name of interface `ifindex` in this network namespace, or undefined when there is none. */
export function interfaceName(ifindex: number): string | undefined {
  const fd = callNum(NR.socket, [2, 2 | 0o2000000, 0], { name: 'socket(AF_INET)' }); // a UDP socket, only for the ioctl
  try {
    const ifr = Buffer.alloc(40); // struct ifreq: name[16], then ifr_ifindex
    ifr.writeInt32LE(ifindex, 16);
    try {
      call(NR.ioctl, [fd, SIOCGIFNAME, addressOf(ifr)], { name: 'ioctl(SIOCGIFNAME)' });
    } catch {
      return undefined;
    }
    return ifr.subarray(0, 16).toString('latin1').replace(/\0.*$/s, '');
  } finally {
    call(NR.close, [fd], { name: 'close' });
  }
}
