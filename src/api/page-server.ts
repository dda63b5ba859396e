/**
 * `ckpt page-server` (CRIU's name): receives the image sets that `dump --page-server`
 * and `pre-dump --page-server` send, into its own images directory, complete (the page
 * files and every other image), so a restore runs from that directory as it is. One
 * connection at a time, synchronously: accept, authenticate, receive, commit.
 */
import { closeSync } from 'node:fs';
import { CkptError } from '../common/errors.js';
import { Channel, FileServer, readToken, receiveSets, servePageFiles, type ReceivedSet, type SessionHooks } from '../images/index.js';
import { isErrno, SOCK } from '../sys/index.js';
import { acceptInet, bindInet, formatAddr, getsockname, inetSocket, listenSocket, parseInetAddr, setSocketBuffers, setSocketTimeouts, setsockoptBuf, SO_INET } from '../sys/inet.js';
import { PAGE_SERVER_BUFFER } from '../dump/page-server.js';

/** How long a client may take to authenticate: a stranger does not hold the server for long. */
const HANDSHAKE_MS = 10_000;
/** How long the server waits for a frame within a session (a migrate's rounds come back to back). */
export const SESSION_TIMEOUT_MS = 60_000;

export interface PageServerOptions {
  /** Where sets go (a set that names a directory goes under it). Created 0700 when the first set begins. */
  imagesDir: string;
  /** Address to listen on (default 0.0.0.0). */
  address?: string;
  /** Port (0: any free one; onListening says which). */
  port: number;
  /** The token file the clients share (0600). */
  authToken: string;
  /**
   * Serve session after session, each set into imagesDir/NAME, the name its dump gives
   * (default: end after the first authenticated session, its set in imagesDir, as CRIU's
   * page server does after one dump).
   */
  keepGoing?: boolean;
  timeoutMs?: number;
  onListening?: (at: { address: string; port: number }) => void;
  /** One line per connection refused, set received or session failed. */
  log?: (line: string) => void;
  /** A client's RESTORE request (ckpt migrate --receive). */
  onRestore?: SessionHooks['onRestore'];
}

export interface PageServerResult {
  sets: ReceivedSet[];
}

/** Listens on address:port; returns the socket and the port it got. */
export function listenOn(address: string, port: number): { fd: number; port: number; shown: string } {
  const addr = parseInetAddr(address, port);
  if (!addr) throw new CkptError('USAGE', `Cannot listen on ${address}: not an IP address`);
  const fd = inetSocket(addr.family, SOCK.STREAM, 0);
  try {
    const one = Buffer.alloc(4);
    one.writeInt32LE(1);
    setsockoptBuf(fd, { level: 1, name: SO_INET.REUSEADDR, value: one });
    // Before listen: connections inherit it, and their window scale is fixed at the handshake.
    setSocketBuffers(fd, PAGE_SERVER_BUFFER);
    bindInet(fd, addr);
    listenSocket(fd, 8);
    const got = getsockname(fd)?.port ?? port;
    return { fd, port: got, shown: formatAddr({ ...addr, port: got }) };
  } catch (e) {
    closeSync(fd);
    if (isErrno(e, 'EADDRINUSE')) throw new CkptError('ADDRESS_IN_USE', `Cannot listen on ${address}:${port}: address in use`, { cause: e });
    throw e;
  }
}

/**
 * Accepts connections until one authenticates; strangers (a wrong token, garbage, a
 * timeout during the handshake) are logged and dropped, with nothing written.
 */
export function acceptAuthenticated(listener: number, args: { token: Buffer; timeoutMs: number; log: (l: string) => void }): Channel {
  for (;;) {
    const conn = acceptInet(listener);
    const peer = conn.peer ? formatAddr(conn.peer) : 'an unknown peer';
    let ch: Channel | undefined;
    try {
      setSocketTimeouts(conn.fd, HANDSHAKE_MS);
      setSocketBuffers(conn.fd, PAGE_SERVER_BUFFER);
      ch = Channel.server(conn.fd, { peer, token: args.token });
      if (ch) setSocketTimeouts(conn.fd, args.timeoutMs);
    } catch (e) {
      args.log(`refused ${peer}: ${(e as Error).message}`);
    }
    if (ch) return ch;
    if (ch === undefined) args.log(`refused ${peer}: it does not know the token`);
    closeSync(conn.fd);
  }
}

export function pageServer(opts: PageServerOptions): PageServerResult {
  const log = opts.log ?? (() => {});
  const token = readToken(opts.authToken);
  const listener = listenOn(opts.address ?? '0.0.0.0', opts.port);
  const sets: ReceivedSet[] = [];
  try {
    opts.onListening?.({ address: opts.address ?? '0.0.0.0', port: listener.port });
    for (;;) {
      const ch = acceptAuthenticated(listener.fd, { token, timeoutMs: opts.timeoutMs ?? SESSION_TIMEOUT_MS, log });
      log(`session with ${ch.peer}`);
      try {
        sets.push(...receiveSets(ch, {
          root: opts.imagesDir,
          maxSets: opts.keepGoing ? undefined : 1,
          intoRoot: !opts.keepGoing,
          onSet: (s) => log(`received ${s.dir}: ${s.files} files, ${s.bytes} bytes`),
          onRestore: opts.onRestore,
        }));
      } catch (e) {
        log(`session with ${ch.peer} failed: ${(e as Error).message}`);
        if (!opts.keepGoing) throw e;
      } finally {
        ch.close();
      }
      if (!opts.keepGoing) {
        if (sets.length === 0) throw new CkptError('NETWORK', `Cannot receive images from ${ch.peer}: it ended the session without committing a set (its dump failed?)`);
        return { sets };
      }
    }
  } finally {
    closeSync(listener.fd);
  }
}

export interface ServePagesOptions {
  /** The image set to serve (a dump's directory, complete). */
  imagesDir: string;
  address?: string;
  port: number;
  authToken: string;
  /** How long a client may be silent within a session (default 0: for ever; a process restored without prefetch may not fault for hours). */
  timeoutMs?: number;
  onListening?: (at: { address: string; port: number }) => void;
  log?: (line: string) => void;
}

/**
 * `ckpt page-server --lazy-pages` (CRIU's `dump --lazy-pages --port`, the source of a
 * lazy restore from elsewhere): serves the files of the set in imagesDir to
 * `ckpt restore --lazy-pages --page-server`, one session at a time (the restore's, then
 * its lazy-pages server's), until a client says it has every page.
 */
export function servePages(opts: ServePagesOptions): { sessions: number } {
  const listener = listenOn(opts.address ?? '0.0.0.0', opts.port);
  try {
    opts.onListening?.({ address: opts.address ?? '0.0.0.0', port: listener.port });
    return serveFiles(listener.fd, { root: opts.imagesDir, token: readToken(opts.authToken), timeoutMs: opts.timeoutMs, log: opts.log });
  } finally {
    closeSync(listener.fd);
  }
}

/**
 * Serves the files under `root` on `listener`, session after session, until a client
 * says it has every page; with `acceptMs`, fails (TIMEOUT) when no client comes that long.
 */
export function serveFiles(listener: number, args: { root: string; token: Buffer; timeoutMs?: number; acceptMs?: number; log?: (line: string) => void }): { sessions: number; bytes: number } {
  const log = args.log ?? (() => {});
  const files = new FileServer(args.root);
  let sessions = 0;
  try {
    for (;;) {
      if (args.acceptMs !== undefined) setSocketTimeouts(listener, args.acceptMs);
      let ch: Channel;
      try {
        ch = acceptAuthenticated(listener, { token: args.token, timeoutMs: args.timeoutMs ?? 0, log });
      } catch (e) {
        throw new CkptError('TIMEOUT', `Cannot serve the pages of ${args.root}: no client came within ${Math.round((args.acceptMs ?? 0) / 1000)} s (${(e as Error).message})`, { cause: e });
      }
      sessions++;
      log(`serving pages to ${ch.peer}`);
      try {
        if (servePageFiles(ch, { files, log }) === 'done') return { sessions, bytes: files.served };
      } finally {
        ch.close();
      }
    }
  } finally {
    files.close();
  }
}
