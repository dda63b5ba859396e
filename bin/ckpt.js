#!/usr/bin/env node
'use strict';
// Runs the bundled CLI (dist/bin/ckpt.cjs, scripts/bundle.mjs) through a V8 code cache,
// or the plain tsc output if only that was built. `npm install` / `npm ci` build both
// through the prepare script. CommonJS (bin/package.json): an ES module entry point
// costs Node ~5 ms more to start.
//
// The code cache (docs/performance.md, "CLI start-up"; docs/cli.md, "Environment"):
// compiling the ~600 kB bundle, and then each function it runs, costs ~30 ms per run;
// V8 can save the compiled code and take it back. The cache is one file per command,
// written after a successful run of that command (so it holds what the run compiled),
// in $CKPT_CACHE_DIR, or $XDG_CACHE_HOME/ckpt, or ~/.cache/ckpt. A cache is code: it
// is read only from a directory and a file owned by us and writable by nobody else,
// only if its first line names this very bundle (its SHA-256, size and mtime) and this
// Node, only if the CRC-32 on its second line matches its data, and V8 uses it only if
// its own checks pass (V8 version, flags).
// Anything else (missing, stale, corrupt, unsafe, unwritable) means a plain compile,
// silently. CKPT_CODE_CACHE=0 turns it off;
// CKPT_DEBUG=1 too (plain require(), so that stack traces can use the source map).
const fs = require('node:fs');
const path = require('node:path');

const BUNDLE = path.join(__dirname, '../dist/bin/ckpt.cjs');
const TSC_MAIN = path.join(__dirname, '../dist/cli/main.js');
// One cache per command: each holds the functions its command ran. Keep in step with
// src/cli/commands/index.ts (test/e2e/cli-bundle.test.ts checks it).
const COMMANDS = ['dump', 'pre-dump', 'restore', 'show', 'check', 'ps', 'sharing', 'page-server', 'migrate', 'lazy-pages'];
const MAGIC = 'ckpt-code-cache 2';
const MAX_CACHE = 64 << 20;

function cacheDir() {
  const env = process.env;
  if (env.CKPT_CACHE_DIR) return path.resolve(env.CKPT_CACHE_DIR);
  if (env.XDG_CACHE_HOME && path.isAbsolute(env.XDG_CACHE_HOME)) return path.join(env.XDG_CACHE_HOME, 'ckpt');
  if (env.HOME && path.isAbsolute(env.HOME)) return path.join(env.HOME, '.cache', 'ckpt');
  return undefined;
}

/** Ours and writable by nobody else: a directory or file anyone else could write is not trusted. */
function safe(st, uid) {
  return st.uid === uid && (st.mode & 0o022) === 0;
}

/**
 * A cache's integrity. V8 checks a code cache's checksum only if asked
 * (--verify-snapshot-checksum): without it, a corrupt cache (bad disk, bad copy) crashed
 * Node instead of being rejected. Asking means loading node:v8 (~3 ms with what it pulls
 * in); node:zlib, which a dump or restore loads anyway, has a native CRC-32 from Node
 * 20.15: the cache's second line holds the CRC of its data, checked before V8 sees it.
 * Older Node: the V8 flag, and "v8" on that line.
 */
let crc32;
function integrityLine(data) {
  return `crc32 ${crc32 ? crc32(data).toString(16).padStart(8, '0') : 'v8'}\n`;
}

/** The V8 data of `file` if its header is `header` and its CRC matches, else undefined. Never throws. */
function readCache(file, header, uid) {
  let fd;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    const st = fs.fstatSync(fd);
    if (!st.isFile() || !safe(st, uid) || st.size > MAX_CACHE || st.size <= header.length) return undefined;
    const buf = fs.readFileSync(fd);
    if (buf.toString('latin1', 0, header.length) !== header) return undefined;
    const nl = buf.indexOf(10, header.length);
    if (nl < 0) return undefined;
    const data = buf.subarray(nl + 1);
    return buf.toString('latin1', header.length, nl + 1) === integrityLine(data) ? data : undefined;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/**
 * Creates `dir` (0700) and the missing directories above it, but only inside a
 * directory of ours: root with HOME pointing at another user's home must not leave
 * root-owned directories there. Throws if it cannot.
 */
function makeDir(dir, uid) {
  const missing = [];
  let top = dir;
  for (;;) {
    try {
      fs.lstatSync(top);
      break;
    } catch {
      missing.unshift(top);
      top = path.dirname(top);
    }
  }
  if (missing.length > 0 && fs.statSync(top).uid !== uid) throw new Error(`${top} is not ours`);
  for (const d of missing) fs.mkdirSync(d, { mode: 0o700 });
}

/** Writes the cache atomically (a new file renamed into place). Never throws. */
function writeCache(dir, file, header, data) {
  const tmp = `${file}.${process.pid}.tmp`;
  const uid = process.geteuid();
  let fd;
  try {
    makeDir(dir, uid);
    if (!safe(fs.lstatSync(dir), uid)) return;
    // O_EXCL: never through a file or link someone left in our way.
    fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
    fs.writeSync(fd, header + integrityLine(data), null, 'latin1');
    fs.writeSync(fd, data);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, file);
  } catch {
    if (fd !== undefined) fs.closeSync(fd);
    try {
      fs.unlinkSync(tmp);
    } catch {
      // not created
    }
  }
}

/** Runs the bundle from its source `src` (`st`: its stat), with a code cache when one can be used. */
function runBundle(src, st) {
  const vm = require('node:vm');
  const { createRequire } = require('node:module');
  const hash = /^\/\/ ckpt-bundle sha256:([0-9a-f]{64})\n/.exec(src)?.[1];
  const dir = process.env.CKPT_CODE_CACHE === '0' ? undefined : cacheDir();
  const uid = process.geteuid();
  let file, header, cached;
  if (dir && hash) {
    const zlib = require('node:zlib');
    if (typeof zlib.crc32 === 'function') crc32 = zlib.crc32;
    const cmd = COMMANDS.includes(process.argv[2]) ? process.argv[2] : 'other';
    file = path.join(dir, `${cmd}.v8`);
    header = `${MAGIC} ${hash} ${st.size} ${st.mtimeMs} ${process.version} ${process.arch}\n`;
    try {
      if (safe(fs.lstatSync(dir), uid)) cached = readCache(file, header, uid);
    } catch {
      // no cache directory yet
    }
  }
  // Set whenever a cache may be written or read: V8 rejects a cache made under other flags.
  if (file && !crc32) require('node:v8').setFlagsFromString('--verify-snapshot-checksum');
  // The bundle is the module function written out (scripts/bundle.mjs): compiled as it is,
  // it evaluates to that function. One built by an older bundle.mjs is wrapped here.
  const bodyAt = src.indexOf('\n') + 1;
  const wrapped = src.startsWith('((f) => ', bodyAt) ? src : `(function (exports, require, module, __filename, __dirname) {${src}\n})`;
  const script = new vm.Script(wrapped, { filename: BUNDLE, cachedData: cached });
  if (file && (!cached || script.cachedDataRejected)) {
    // After the command, so the cache holds every function it compiled; only after a
    // success (a failed run compiled only part of its path).
    process.once('exit', (code) => {
      if (code === 0) writeCache(dir, file, header, script.createCachedData());
    });
  }
  const mod = { exports: {} };
  script.runInThisContext()(mod.exports, createRequire(BUNDLE), mod, BUNDLE, path.dirname(BUNDLE));
}

function main() {
  let src, st;
  try {
    const fd = fs.openSync(BUNDLE, 'r');
    try {
      st = fs.fstatSync(fd);
      src = fs.readFileSync(fd, 'utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    // no bundle: only tsc ran
  }
  if (src !== undefined && process.env.CKPT_DEBUG !== '1') return runBundle(src, st);
  if (src !== undefined) {
    process.setSourceMapsEnabled(true);
    return require(BUNDLE);
  }
  if (fs.existsSync(TSC_MAIN)) return import(require('node:url').pathToFileURL(TSC_MAIN).href);
  process.stderr.write(`ckpt: cannot start: ${BUNDLE} is missing; run "npm install" (or "npm run build") first\n`);
  process.exitCode = 70;
}

main();
