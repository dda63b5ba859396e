/**
 * The dump's side of a page server (CRIU's --page-server --address --port): one TCP
 * connection, made and authenticated before the tree is frozen, over which the image set
 * is sent as it is written (images/remote/). Blocking socket calls: a dump may not yield.
 */
import { type Channel, ImageWriter, RemoteSet } from '../images/index.js';
import { connectPageServer, endSession, type PageServerAddress } from '../resources/page-server-connect.js';

export { connectPageServer, endSession, PAGE_SERVER_BUFFER, PAGE_SERVER_TIMEOUT_MS, type PageServerAddress } from '../resources/page-server-connect.js';

/**
 * Where a dump's images go besides its directory: a page server to connect to, or a set
 * on a connection the caller keeps (ckpt migrate sends every round over one), in `dir`
 * under the server's directory.
 */
export type PageServerTarget = PageServerAddress | { channel: Channel; dir: string };

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
