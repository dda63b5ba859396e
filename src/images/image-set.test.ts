import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { z } from 'zod';
import { isCkptError } from '../common/errors.js';
import { ImageReader, ImageWriter, readImage, writeImage, zBig } from './index.js';

const Core = z.object({ pid: z.number().int(), comm: z.string(), regs: z.object({ rip: zBig, rsp: zBig }) });
const CORE = { name: 'core-123', kind: 'core', schema: Core };
const core = { pid: 123, comm: 'victim', regs: { rip: 0xffffffffffffff00n, rsp: 0x7ffd00001000n } };

function tmp(t: TestContext): string {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-images-'));
  t.after(() => fs.rmSync(base, { recursive: true, force: true }));
  return path.join(base, 'nested', 'dump');
}

function dumpCore(dir: string): void {
  const w = ImageWriter.create(dir);
  writeImage(w, { ...CORE, value: core });
  w.blob('unlinked-7', Buffer.from('deleted file contents'));
  w.commit();
}

function badImage(re: RegExp) {
  return (e: unknown) => isCkptError(e, 'BAD_IMAGE') && re.test(e.message);
}

test('metadata with bigints round-trips; dir is 0700, files 0600', (t) => {
  const old = process.umask(0o022);
  t.after(() => process.umask(old));
  const dir = tmp(t);
  dumpCore(dir);
  assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
  for (const f of fs.readdirSync(dir)) assert.equal(fs.statSync(path.join(dir, f)).mode & 0o777, 0o600, f);
  const r = ImageReader.open(dir);
  assert.deepEqual(readImage(r, CORE), core);
  assert.equal(r.has('core-123'), true);
  assert.equal(r.has('pipes'), false);
  assert.deepEqual(r.blob('unlinked-7').toString(), 'deleted file contents');
  assert.deepEqual(r.list().map((e) => [e.name, e.type]), [['core-123.img', 'image'], ['unlinked-7.blob', 'blob']]);
});

test('a value that does not match its schema is not written', (t) => {
  const w = ImageWriter.create(tmp(t));
  assert.throws(() => w.write({ ...CORE, value: { ...core, pid: 1.5 } }), /pid/);
  w.abort();
});

test('a flipped byte in a payload is a checksum mismatch', (t) => {
  const dir = tmp(t);
  dumpCore(dir);
  const f = path.join(dir, 'core-123.img');
  const buf = fs.readFileSync(f);
  buf[buf.length - 3]! ^= 0x01;
  fs.writeFileSync(f, buf);
  assert.throws(() => ImageReader.open(dir).read(CORE), badImage(/core-123\.img: checksum mismatch/));
});

test('a flipped byte in a blob is a checksum mismatch', (t) => {
  const dir = tmp(t);
  dumpCore(dir);
  const f = path.join(dir, 'unlinked-7.blob');
  const buf = fs.readFileSync(f);
  buf[0]! ^= 0x80;
  fs.writeFileSync(f, buf);
  assert.throws(() => ImageReader.open(dir).blob('unlinked-7'), badImage(/checksum mismatch/));
});

test('a truncated image is refused', (t) => {
  const dir = tmp(t);
  dumpCore(dir);
  const f = path.join(dir, 'core-123.img');
  fs.truncateSync(f, fs.statSync(f).size - 10);
  assert.throws(() => ImageReader.open(dir), badImage(/core-123\.img: truncated/));
});

test('an image of a newer major format is refused with the versions', (t) => {
  const dir = tmp(t);
  dumpCore(dir);
  const f = path.join(dir, 'core-123.img');
  const buf = fs.readFileSync(f);
  buf.writeUInt32LE(2, 8);
  buf.writeUInt32LE(0, 12);
  fs.writeFileSync(f, buf);
  assert.throws(() => ImageReader.open(dir).read(CORE), {
    code: 'BAD_IMAGE',
    message: `Cannot read ${f}: image format 2.0 is newer than this ckpt understands (1.x)`,
  });
});

test('a payload that parses but breaks the schema is BAD_IMAGE, as is a kind mismatch', (t) => {
  const dir = tmp(t);
  dumpCore(dir);
  const r = ImageReader.open(dir);
  assert.throws(() => r.read({ ...CORE, schema: z.object({ pid: z.string() }) }), badImage(/does not match its schema: pid/));
  assert.throws(() => r.read({ ...CORE, kind: 'mm' }), badImage(/holds a core image, expected mm/));
  assert.throws(() => r.read({ ...CORE, name: 'core-9' }), badImage(/not in the inventory/));
});

test('a directory without an inventory is an incomplete dump', (t) => {
  const dir = tmp(t);
  const w = ImageWriter.create(dir);
  w.write({ ...CORE, value: core });
  assert.throws(() => ImageReader.open(dir), {
    code: 'BAD_IMAGE',
    message: `Cannot read images in ${dir}: no inventory (the dump did not complete)`,
  });
});

test('a missing or foreign directory is named as such, not as an incomplete dump', (t) => {
  const dir = tmp(t);
  assert.throws(() => ImageReader.open(path.join(dir, 'nope')), { code: 'USAGE', message: /: the directory does not exist$/ });
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'notes.txt'), 'x');
  assert.throws(() => ImageReader.open(dir), { code: 'USAGE', message: /: not a ckpt image directory \(no inventory.img\)$/ });
});

test('renaming the directory during a dump does not split the set: files go where the directory is', (t) => {
  const dir = tmp(t);
  const w = ImageWriter.create(dir);
  w.write({ ...CORE, value: core });
  const moved = `${dir}-moved`;
  fs.renameSync(dir, moved);
  t.after(() => fs.rmSync(moved, { recursive: true, force: true }));
  fs.mkdirSync(dir); // an impostor at the old name gets nothing
  w.blob('late', Buffer.from('late'));
  w.commit();
  assert.deepEqual(fs.readdirSync(dir), []);
  const r = ImageReader.open(moved);
  assert.equal(readImage(r, CORE).pid, core.pid);
  assert.equal(r.blob('late').toString(), 'late');
});

test('abort removes what the writer made, and the dir it created', (t) => {
  const dir = tmp(t);
  const w = ImageWriter.create(dir);
  w.write({ ...CORE, value: core });
  const pw = w.pages(1);
  pw.append(0x1000n, Buffer.alloc(8192, 1));
  w.blob('b', [Buffer.from('x')]);
  w.abort();
  assert.equal(fs.existsSync(dir), false);
  assert.throws(() => w.write({ ...CORE, value: core }), { code: 'USAGE' });

  fs.mkdirSync(dir, { mode: 0o755 });
  const w2 = ImageWriter.create(dir); // existing empty dir: kept, made 0700
  assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
  w2.write({ ...CORE, value: core });
  w2.abort();
  assert.deepEqual(fs.readdirSync(dir), []);
});

test('a non-empty directory is refused; names are checked; commit waits for open page files', (t) => {
  const dir = tmp(t);
  dumpCore(dir);
  assert.throws(() => ImageWriter.create(dir), { code: 'USAGE', message: /exists and is not empty/ });
  fs.rmSync(dir, { recursive: true });
  const w = ImageWriter.create(dir);
  t.after(() => w.abort());
  assert.throws(() => w.write({ ...CORE, name: '../evil', value: core }), { code: 'USAGE' });
  assert.throws(() => w.write({ ...CORE, name: 'inventory', value: core }), { code: 'USAGE' });
  w.write({ ...CORE, value: core });
  assert.throws(() => w.write({ ...CORE, value: core }), /written twice/);
  w.pages(1);
  assert.throws(() => w.commit(), /pages-1\.img is still being written/);
});

test('a listed file that is missing or replaced by a symlink is refused at open', (t) => {
  const dir = tmp(t);
  dumpCore(dir);
  const f = path.join(dir, 'unlinked-7.blob');
  fs.rmSync(f);
  assert.throws(() => ImageReader.open(dir), badImage(/unlinked-7\.blob: missing/));
  fs.symlinkSync('/etc/passwd', f);
  assert.throws(() => ImageReader.open(dir), badImage(/not a regular file/));
});

test('a symlinked inventory, or an image replaced by a symlink or a FIFO after open, is refused', (t) => {
  const dir = tmp(t);
  dumpCore(dir);
  const r = ImageReader.open(dir);
  const core = path.join(dir, 'core-123.img');
  fs.renameSync(core, `${core}.real`);
  fs.symlinkSync(`${core}.real`, core);
  assert.throws(() => r.read(CORE), badImage(/core-123\.img: it is a symbolic link/));
  fs.rmSync(core);
  execFileSync('mkfifo', [core]);
  assert.throws(() => r.read(CORE), badImage(/core-123\.img: not a regular file/));
  const inv = path.join(dir, 'inventory.img');
  fs.renameSync(inv, `${inv}.real`);
  fs.symlinkSync(`${inv}.real`, inv);
  assert.throws(() => ImageReader.open(dir), badImage(/inventory\.img: it is a symbolic link/));
});

test('blobFrom writes a stream', async (t) => {
  const dir = tmp(t);
  const w = ImageWriter.create(dir);
  await w.blobFrom('s', fs.createReadStream('/proc/self/cmdline'));
  async function* failing() {
    yield Buffer.from('a');
    throw new Error('source broke');
  }
  await assert.rejects(w.blobFrom('f', failing()), /source broke/);
  assert.throws(() => w.commit(), /f\.blob is still being written/);
  w.abort();
});
