// An authenticated channel over a connected stream socket (the page server's TCP
// connection), synchronous on both ends: a dump holds its tree frozen and may not yield
// to the event loop, so it reads and writes the socket with blocking read/write calls.
//
// Both ends know a token (a 0600 file, token.ts). The handshake is a nonce exchange that
// proves knowledge of the token both ways without sending it (HMAC-SHA256), and derives
// one key per direction; every frame then carries a Poly1305 tag of header ‖ payload
// under that key and a nonce counting frames per direction (ChaCha20-Poly1305 with the
// frame as associated data and no plaintext, RFC 8439), so a frame cannot be forged,
// altered, replayed, dropped or reordered unnoticed. Contents travel in clear
// (docs/security.md says why, and why this MAC: ~5 GB/s here, HMAC-SHA256 ~1).
import * as fs from 'node:fs';
import { lazyCrypto } from '../../common/builtin.js';
import { CkptError } from '../../common/errors.js';

const MAGIC = Buffer.from('CKPT-PS1');
const NONCE = 32;
const MAC = 32;
const TAG = 16;
const HEADER = 8;
/** The largest payload a frame may carry: big enough for 4 MiB page writes, small enough to hold in memory. */
export const MAX_PAYLOAD = 8 * 1024 * 1024;

/**
 * Frame types. Client to server: a set's files and commit, and ckpt migrate's restore
 * request, GO (the source's tree is dead: let yours run) and RESOLVE (on a new
 * connection: how a migration whose connection broke ended), and a lazy restore's READ
 * of a served file (page-files.ts); server to client: answers.
 */
export const FRAME = {
  BEGIN: 1, FILE: 2, DATA: 3, CLOSE: 4, COMMIT: 5, ABORT: 6, END: 7, RESTORE: 8, GO: 9, RESOLVE: 10, READ: 11,
  OK: 64, ERROR: 65,
} as const;
const KNOWN = new Set<number>(Object.values(FRAME));

export interface Frame {
  type: number;
  payload: Buffer;
}

const mac = (key: Buffer, parts: readonly Uint8Array[]) => {
  const h = lazyCrypto().createHmac('sha256', key);
  for (const p of parts) h.update(p);
  return h.digest();
};

/** The frame tag: Poly1305 under a one-time key ChaCha20 derives from `key` and the frame's number (never reused: one key per direction and session). */
function frameTag(key: Buffer, args: { nonce: Buffer; parts: readonly Uint8Array[] }): Buffer {
  const c = lazyCrypto().createCipheriv('chacha20-poly1305', key, args.nonce, { authTagLength: TAG });
  for (const p of args.parts) if (p.length > 0) c.setAAD(p, { plaintextLength: 0 });
  c.final();
  return c.getAuthTag();
}

/** A connection refused or broken, a timeout, a frame that does not check: one error kind, naming the peer. */
export function channelError(peer: string, why: string, cause?: unknown): CkptError {
  return new CkptError('NETWORK', `Cannot exchange images with ${peer}: ${why}`, { cause });
}

function describeIo(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'EAGAIN' || code === 'EWOULDBLOCK') return 'timed out';
  if (code === 'EPIPE' || code === 'ECONNRESET') return 'the connection was closed';
  return code ?? String(e);
}

/** A signal (ckpt's deferred ones, a profiler's) interrupts a blocking call: it is simply made again. */
function retryEintr<T>(fn: () => T): T {
  for (;;) {
    try {
      return fn();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EINTR') throw e;
    }
  }
}

export class Channel {
  readonly fd: number;
  /** Who is at the other end, for messages ("page server 10.0.0.2:4000"). */
  readonly peer: string;
  private sendKey = Buffer.alloc(0);
  private recvKey = Buffer.alloc(0);
  private sendSeq = 0n;
  private recvSeq = 0n;
  private readonly head = Buffer.alloc(HEADER);
  /** The 12-byte nonce of the next frame: 4 zero bytes, then the frame's number (u64 LE). */
  private readonly seq = Buffer.alloc(12);
  private closed = false;

  private constructor(fd: number, peer: string) {
    this.fd = fd;
    this.peer = peer;
  }

  /** The connecting side's handshake; throws (PERMISSION) when the server does not know the token. */
  static client(fd: number, args: { peer: string; token: Buffer }): Channel {
    const ch = new Channel(fd, args.peer);
    const hello = ch.readExact(MAGIC.length + NONCE);
    if (!hello.subarray(0, MAGIC.length).equals(MAGIC)) throw channelError(args.peer, 'not a ckpt page server');
    const sn = hello.subarray(MAGIC.length);
    const cn = lazyCrypto().randomBytes(NONCE);
    ch.writeAll([MAGIC, cn, mac(args.token, [Buffer.from('client'), sn, cn])]);
    let answer: Buffer;
    try {
      answer = ch.readExact(1 + MAC);
    } catch (e) {
      // The server closes without a word on a wrong token (it says nothing to one who cannot prove it).
      throw new CkptError('PERMISSION', `Cannot exchange images with ${args.peer}: it refused our token (not the --auth-token file it was started with?)`, { cause: e });
    }
    if (answer[0] !== 1 || !lazyCrypto().timingSafeEqual(answer.subarray(1), mac(args.token, [Buffer.from('server'), sn, cn]))) {
      throw new CkptError('PERMISSION', `Cannot exchange images with ${args.peer}: it does not know our token (another server at that address?)`);
    }
    ch.keys(args.token, { sn, cn, mine: 'c2s' });
    return ch;
  }

  /** The listening side's handshake: undefined (and nothing more said) when the client does not know the token. */
  static server(fd: number, args: { peer: string; token: Buffer }): Channel | undefined {
    const ch = new Channel(fd, args.peer);
    const sn = lazyCrypto().randomBytes(NONCE);
    ch.writeAll([MAGIC, sn]);
    const hello = ch.readExact(MAGIC.length + NONCE + MAC);
    if (!hello.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
    const cn = hello.subarray(MAGIC.length, MAGIC.length + NONCE);
    const proof = hello.subarray(MAGIC.length + NONCE);
    if (!lazyCrypto().timingSafeEqual(proof, mac(args.token, [Buffer.from('client'), sn, cn]))) return undefined;
    ch.writeAll([Buffer.from([1]), mac(args.token, [Buffer.from('server'), sn, cn])]);
    ch.keys(args.token, { sn, cn, mine: 's2c' });
    return ch;
  }

  private keys(token: Buffer, n: { sn: Buffer; cn: Buffer; mine: 'c2s' | 's2c' }): void {
    const c2s = mac(token, [Buffer.from('c2s'), n.sn, n.cn]);
    const s2c = mac(token, [Buffer.from('s2c'), n.sn, n.cn]);
    [this.sendKey, this.recvKey] = n.mine === 'c2s' ? [c2s, s2c] : [s2c, c2s];
  }

  /** Sends one frame; `payload` may be given in parts (no copy). */
  send(type: number, payload: Uint8Array | readonly Uint8Array[] = []): void {
    const parts = payload instanceof Uint8Array ? [payload] : payload;
    const len = parts.reduce((n, p) => n + p.length, 0);
    if (len > MAX_PAYLOAD) throw new CkptError('INTERNAL', `Cannot send a frame of ${len} bytes to ${this.peer}: over ${MAX_PAYLOAD}`);
    const head = Buffer.alloc(HEADER);
    head[0] = type;
    head.writeUInt32LE(len, 4);
    this.seq.writeBigUInt64LE(this.sendSeq++, 4);
    const tag = frameTag(this.sendKey, { nonce: this.seq, parts: [head, ...parts] });
    this.writeAll([head, ...parts, tag]);
  }

  /** Sends a JSON value as one frame. */
  sendJson(type: number, value: unknown): void {
    this.send(type, Buffer.from(JSON.stringify(value)));
  }

  /**
   * Receives one frame, checked: known type, a length within MAX_PAYLOAD (before anything
   * is allocated), and its MAC. `into` is reused for the payload when it is big enough.
   */
  receive(into?: Buffer): Frame {
    this.readInto(this.head);
    const type = this.head[0]!;
    const len = this.head.readUInt32LE(4);
    if (!KNOWN.has(type) || this.head[1] !== 0 || this.head[2] !== 0 || this.head[3] !== 0) throw channelError(this.peer, `unknown frame type ${type}`);
    if (len > MAX_PAYLOAD) throw channelError(this.peer, `frame of ${len} bytes (more than ${MAX_PAYLOAD})`);
    const payload = into && into.length >= len ? into.subarray(0, len) : Buffer.allocUnsafe(len);
    this.readInto(payload);
    const tag = this.readExact(TAG);
    this.seq.writeBigUInt64LE(this.recvSeq++, 4);
    if (!lazyCrypto().timingSafeEqual(tag, frameTag(this.recvKey, { nonce: this.seq, parts: [this.head, payload] }))) {
      throw channelError(this.peer, 'a frame failed its integrity check (altered in transit, or not from the peer we authenticated)');
    }
    return { type, payload };
  }

  /** Receives the answer to a request: OK's payload, or the peer's ERROR as a CkptError. */
  expectOk(what: string): Buffer {
    const f = this.receive();
    if (f.type === FRAME.ERROR) throw new CkptError('NETWORK', `Cannot ${what}: ${this.peer} says: ${f.payload.toString('utf8').slice(0, 1000)}`);
    if (f.type !== FRAME.OK) throw channelError(this.peer, `unexpected frame ${f.type} in answer to ${what}`);
    return f.payload;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      fs.closeSync(this.fd);
    } catch {
      // already gone
    }
  }

  private writeAll(parts: readonly Uint8Array[]): void {
    try {
      let bufs = parts.filter((p) => p.length > 0);
      while (bufs.length > 0) {
        let n = retryEintr(() => fs.writevSync(this.fd, bufs as NodeJS.ArrayBufferView[]));
        while (bufs.length > 0 && n >= bufs[0]!.length) n -= bufs.shift()!.length;
        if (n > 0) bufs = [bufs[0]!.subarray(n), ...bufs.slice(1)];
      }
    } catch (e) {
      throw channelError(this.peer, `sending failed: ${describeIo(e)}`, e);
    }
  }

  private readExact(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    this.readInto(b);
    return b;
  }

  private readInto(b: Buffer): void {
    let off = 0;
    while (off < b.length) {
      let n: number;
      try {
        n = retryEintr(() => fs.readSync(this.fd, b, off, b.length - off, null));
      } catch (e) {
        throw channelError(this.peer, `receiving failed: ${describeIo(e)}`, e);
      }
      if (n === 0) throw channelError(this.peer, 'the connection was closed');
      off += n;
    }
  }
}
