/**
 * The protocol name of a socket fd (the `system.sockprotoname` xattr of its inode:
 * "NETLINK", "RAWv6", "PACKET", "MPTCP"…), read once per fd: several registry rules ask.
 */
import { sockProtoName } from '../../../sys/inet.js';
import { fdPath, type FdFacts } from '../facts.js';

const cache = new WeakMap<FdFacts, string | undefined>();

export function sockProto(f: FdFacts): string | undefined {
  if (!f.link.startsWith('socket:')) return undefined;
  if (!cache.has(f)) cache.set(f, sockProtoName(fdPath(f.pid, f.fd)));
  return cache.get(f);
}

/** A socket of a family no rule handles (not unix): refused naming its protocol. */
export const isOtherSocket = (f: FdFacts) => {
  const p = sockProto(f);
  return p !== undefined && !p.startsWith('UNIX'); // UNIX, UNIX-STREAM: dumpUnix's
};
