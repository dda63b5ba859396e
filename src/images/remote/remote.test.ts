import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isCkptError } from '../../common/errors.js';
import { socketpair, SOCK } from '../../sys/index.js';
import { Channel, FRAME, ImageReader, ImageWriter, RemoteSet } from '../index.js';
import { encodeMetaImage } from '../format.js';

const helper = new URL('../../../test/helpers/receive-sets.ts', import.meta.url).pathname;
const token = randomBytes(32);

/** A receiving end in a child process on one end of a socket pair; the other end is ours. */
function receiver(t: TestContext, opts: { token?: Buffer } = {}): { fd: number; dir: string; result: Promise<Record<string, unknown>> } {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-remote-'));
  t.after(() => fs.rmSync(base, { recursive: true, force: true }));
  const dir = path.join(base, 'set');
  const [mine, theirs] = socketpair(SOCK.STREAM);
  const child = spawn(process.execPath, ['--import', 'tsx', helper, dir, (opts.token ?? token).toString('hex')], { stdio: ['ignore', 'pipe', 'inherit', theirs] });
  fs.closeSync(theirs);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  const result = new Promise<Record<string, unknown>>((res) => child.on('exit', () => res(JSON.parse(out || '{}') as Record<string, unknown>)));
  return { fd: mine, dir, result };
}

test('a set written through ImageWriter arrives whole: pages, images, inventory', async (t) => {
  const r = receiver(t);
  const ch = Channel.client(r.fd, { peer: 'test server', token });
  const local = path.join(path.dirname(r.dir), 'local');
  const w = ImageWriter.create(local, { remote: new RemoteSet(ch) });
  const pw = w.pages(1, { checksum: true });
  const data = randomBytes(9 * 1024 * 1024); // more than one frame
  pw.append(0x10000n, data);
  pw.close();
  w.blob('b', Buffer.from('blob'));
  w.commit();
  ch.send(FRAME.END);
  ch.close();
  const got = await r.result;
  assert.deepEqual((got['sets'] as { files: number }[]).map((s) => s.files), [3]); // pages, pagemap, blob
  assert.ok(!fs.existsSync(path.join(local, 'pages-1.img')), 'the page file went only to the server');
  const reader = ImageReader.open(r.dir);
  const p = reader.pages(1);
  assert.ok(p.verify());
  assert.ok(p.read(p.runs[0]!).equals(data));
  assert.ok(reader.blob('b').equals(Buffer.from('blob')));
  reader.close();
});

test('a client without the token is refused, and nothing is written', async (t) => {
  const r = receiver(t, { token: randomBytes(32) });
  assert.throws(() => Channel.client(r.fd, { peer: 'test server', token }), (e: unknown) => isCkptError(e, 'PERMISSION'));
  fs.closeSync(r.fd);
  assert.deepEqual(await r.result, { refused: true });
  assert.ok(!fs.existsSync(r.dir));
});

/** Sends `frames` after a set began, then reads the server's answer; returns its error. */
async function refused(t: TestContext, send: (ch: Channel) => void): Promise<string> {
  const r = receiver(t);
  const ch = Channel.client(r.fd, { peer: 'test server', token });
  ch.sendJson(FRAME.BEGIN, { dir: '' });
  ch.sendJson(FRAME.FILE, { id: 1, name: 'core-1.img', type: 'image' });
  ch.send(FRAME.DATA, [Buffer.from([1, 0, 0, 0]), Buffer.from('abc')]);
  send(ch);
  const got = await r.result;
  ch.close();
  assert.ok(!fs.existsSync(r.dir), 'the set was removed');
  return String(got['error']);
}

test('an authenticated peer is still checked: names, ids, sizes, the inventory, frame lengths and MACs', async (t) => {
  assert.match(await refused(t, (ch) => ch.sendJson(FRAME.FILE, { id: 2, name: '../x', type: 'image' })), /does not match its schema/);
  assert.match(await refused(t, (ch) => ch.sendJson(FRAME.FILE, { id: 2, name: 'inventory.img', type: 'image' })), /not a file a set may send/);
  assert.match(await refused(t, (ch) => ch.send(FRAME.DATA, [Buffer.from([9, 0, 0, 0]), Buffer.from('x')])), /file id 9, which is not open/);
  assert.match(await refused(t, (ch) => ch.sendJson(FRAME.CLOSE, { id: 1, size: 4 })), /3 bytes arrived, 4 were sent/);
  const inventory = (files: unknown[]) => encodeMetaImage('inventory', Buffer.from(JSON.stringify({ format: { major: 1, minor: 4 }, files })));
  assert.match(await refused(t, (ch) => {
    ch.sendJson(FRAME.CLOSE, { id: 1, size: 3 });
    ch.send(FRAME.COMMIT, inventory([{ name: 'core-1.img', type: 'image', size: 3, crc32: null }, { name: 'mm-1.img', type: 'image', size: 3, crc32: null }]));
  }), /lists mm-1.img, which was not sent/);
  assert.match(await refused(t, (ch) => {
    ch.sendJson(FRAME.CLOSE, { id: 1, size: 3 });
    ch.send(FRAME.COMMIT, inventory([{ name: 'core-1.img', type: 'image', size: 3, crc32: 12345 }]));
  }), /not the file the inventory lists/);
  // Raw bytes on the socket: a length over the bound, and a frame whose MAC is wrong.
  assert.match(await refused(t, (ch) => fs.writeSync(ch.fd, Buffer.from([FRAME.DATA, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f]))), /more than/);
  assert.match(await refused(t, (ch) => fs.writeSync(ch.fd, Buffer.concat([Buffer.from([FRAME.END, 0, 0, 0, 0, 0, 0, 0]), Buffer.alloc(16)]))), /integrity check/);
});
