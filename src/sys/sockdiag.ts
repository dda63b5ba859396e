/**
 * One NETLINK_SOCK_DIAG dump exchange (SOCK_DIAG_BY_FAMILY with NLM_F_DUMP): the
 * family's request struct goes out, each answer record comes back as a byte range, and
 * rtattr lists inside a record are walked. Used by the netlink and packet socket diags.
 */
import { call, callNum } from './call.js';
import { NR } from './nr.js';
import { AF, recv, send, SOCK } from './socket.js';

const NETLINK_SOCK_DIAG = 4;
const SOCK_DIAG_BY_FAMILY = 20;
const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;

export interface Range {
  start: number;
  end: number;
}

/** Sends `body` (e.g. struct netlink_diag_req) as a dump request; `onRecord` gets each answer's payload range in `buf`. */
export function sockDiagDump(body: Buffer, onRecord: (buf: Buffer, r: Range) => void): void {
  const fd = callNum(NR.socket, [AF.NETLINK, SOCK.DGRAM | SOCK.CLOEXEC, NETLINK_SOCK_DIAG], { name: 'socket(NETLINK_SOCK_DIAG)' });
  try {
    const req = Buffer.alloc(16 + body.length);
    req.writeUInt32LE(req.length, 0);
    req.writeUInt16LE(SOCK_DIAG_BY_FAMILY, 4);
    req.writeUInt16LE(1 | 0x300, 6); // NLM_F_REQUEST | NLM_F_DUMP
    req.writeUInt32LE(1, 8);
    body.copy(req, 16);
    send(fd, req);
    const buf = Buffer.alloc(1 << 16);
    for (;;) {
      const n = recv(fd, buf);
      if (n === 0) return;
      for (let off = 0; off + 16 <= n; ) {
        const len = buf.readUInt32LE(off);
        const type = buf.readUInt16LE(off + 4);
        if (type === NLMSG_DONE) return;
        if (type === NLMSG_ERROR) throw new Error(`sock_diag: error ${-buf.readInt32LE(off + 16)}`);
        onRecord(buf, { start: off + 16, end: Math.min(off + len, n) });
        if (len < 16) break;
        off += (len + 3) & ~3;
      }
    }
  } finally {
    call(NR.close, [fd], { name: 'close' });
  }
}

/** Calls `fn` with the type, payload offset and payload length of each rtattr in `r`. */
export function forEachAttr(buf: Buffer, r: Range, fn: (type: number, at: number, len: number) => void): void {
  for (let a = r.start; a + 4 <= r.end; ) {
    const alen = buf.readUInt16LE(a);
    if (alen < 4) break;
    fn(buf.readUInt16LE(a + 2), a + 4, Math.min(alen, r.end - a) - 4);
    a += (alen + 3) & ~3;
  }
}
