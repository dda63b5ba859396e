/**
 * The dump's side of a page server (CRIU's --page-server --address --port): one TCP
 * connection, made and authenticated before the tree is frozen, over which the image set
 * is sent as it is written (images/remote/). Blocking socket calls: a dump may not yield.
 */
import { closeSync } from 'node:fs';
import { CkptError } from '../common/errors.js';
import { Channel, FRAME, ImageWriter, RemoteSet, readToken } from '../images/index.js';
import { isErrno, SOCK } from '../sys/index.js';
import { connectInet, inetSocket, parseInetAddr, setSocketBuffers, setSocketTimeouts } from '../sys/inet.js';

/** How long one blocking read or write on the connection may take before the dump fails. */
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

/**
 * Where a dump's images go besides its directory: a page server to connect to, or a set
 * on a connection the caller keeps (ckpt migrate sends every round over one), in `dir`
 * under the server's directory.
 */
export type PageServerTarget = PageServerAddress | { channel: Channel; dir: string };

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

/**
 * Runs `fn` with the image writer of a dump or pre-dump into `imagesDir`, whose set also
 * goes to `target` when there is one (connected first: before anything is frozen).
 */
export function withImageWriter<T>(imagesDir: string, args: { target?: PageServerTarget; fn: (w: ImageWriter) => T }): T {
  const remote = args.target ? openRemoteSet(args.target) : undefined;
  let w: ImageWriter;
  try {
    w = ImageWriter.create(imagesDir, { remote: remote?.set });
  } catch (e) {
    remote?.set.abort();
    remote?.close();
    throw e;
  }
  try {
    return args.fn(w);
  } finally {
    remote?.close();
  }
}

/** The set a dump sends, and how to let go of the connection after (END, close) when it made it. */
function openRemoteSet(t: PageServerTarget): { set: RemoteSet; close(): void } {
  if ('channel' in t) return { set: new RemoteSet(t.channel, t.dir), close: () => {} };
  const ch = connectPageServer(t);
  try {
    return { set: new RemoteSet(ch, t.set ?? ''), close: () => endSession(ch) };
  } catch (e) {
    ch.close();
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
