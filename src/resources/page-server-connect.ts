/**
 * The connecting side of a page server's connection (CRIU's --page-server --address
 * --port): a blocking TCP socket with timeouts, authenticated (images/remote/channel.ts). A dump
 * sends its set over it; a lazy restore reads pages over it (images/remote/page-files.ts).
 */
import { closeSync } from 'node:fs';
import { CkptError } from '../common/errors.js';
import { isErrno, SOCK } from '../sys/index.js';
import { connectInet, inetSocket, parseInetAddr, setSocketBuffers, setSocketTimeouts } from '../sys/inet.js';
import { Channel, FRAME, readToken } from '../images/index.js';

/** How long one blocking read or write on the connection may take before it fails. */
export const PAGE_SERVER_TIMEOUT_MS = 30_000;
/** Socket buffers of the connection, each way: two frames of 4 MiB in flight. */
export const PAGE_SERVER_BUFFER = 8 * 1024 * 1024;

export interface PageServerAddress {
  /** An IPv4 or IPv6 address (names are not resolved). */
  address: string;
  port: number;
  /** The token file both sides share (0600). */
  authToken: string;
  timeoutMs?: number;
  /**
   * The set's name (the CLI gives its -D's last component): a server that keeps going
   * writes each set into DIR/NAME, so that a chain's relative parent names hold there too;
   * a one-dump server writes into DIR itself.
   */
  set?: string;
}

/** Connects and authenticates (NETWORK or PERMISSION errors, naming the server). */
export function connectPageServer(t: PageServerAddress): Channel {
  const peer = `page server ${t.address.includes(':') ? `[${t.address}]` : t.address}:${t.port}`;
  if (!Number.isInteger(t.port) || t.port <= 0 || t.port > 65535) throw new CkptError('USAGE', `Cannot connect to ${peer}: not a valid port`);
  const addr = parseInetAddr(t.address, t.port);
  if (!addr) throw new CkptError('USAGE', `Cannot connect to ${peer}: ${t.address} is not an IP address`);
  const token = readToken(t.authToken);
  const fd = inetSocket(addr.family, SOCK.STREAM, 0);
  try {
    setSocketTimeouts(fd, t.timeoutMs ?? PAGE_SERVER_TIMEOUT_MS);
    setSocketBuffers(fd, PAGE_SERVER_BUFFER);
    try {
      connectInet(fd, addr);
    } catch (e) {
      const why = isErrno(e, 'ECONNREFUSED') ? 'connection refused (is `ckpt page-server` running there?)'
        : isErrno(e, 'EAGAIN') || isErrno(e, 'EINPROGRESS') || isErrno(e, 'ETIMEDOUT') ? 'timed out' : (e as Error).message;
      throw new CkptError('NETWORK', `Cannot connect to ${peer}: ${why}`, { cause: e });
    }
    return Channel.client(fd, { peer, token });
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

/** Tells the server the session is over and closes it; never throws. */
export function endSession(ch: Channel): void {
  try {
    ch.send(FRAME.END);
  } catch {
    // gone already
  }
  ch.close();
}
