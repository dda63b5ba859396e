#!/usr/bin/env node
// Compiles test/victims/*.c into test/victims/bin/ with the machine's gcc,
// skipping victims whose binary is newer than their source.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, statSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const dir = new URL('../test/victims/', import.meta.url).pathname;
const out = join(dir, 'bin');
mkdirSync(out, { recursive: true });
// A victim is rebuilt when it or any shared header (victim.h, tcp-victim.h) is newer than its binary.
const headers = readdirSync(dir).filter((n) => n.endsWith('.h')).map((n) => join(dir, n));
for (const name of readdirSync(dir).filter((n) => n.endsWith('.c'))) {
  const src = join(dir, name);
  const bin = join(out, name.slice(0, -2));
  const newest = Math.max(statSync(src).mtimeMs, ...headers.map((h) => statSync(h).mtimeMs));
  if (existsSync(bin) && statSync(bin).mtimeMs >= newest) continue;
  // -static victims are the blank processes restore starts from; the rest are ordinary dynamic programs.
  const isStatic = name.startsWith('static-');
  const args = ['-O1', '-g', '-Wall', '-pthread', '-o', bin, src, ...(isStatic ? ['-static'] : [])];
  const r = spawnSync('gcc', args, { stdio: 'inherit' });
  if (r.error || r.status !== 0) {
    process.stderr.write(`cannot build victim ${name}: ${r.error?.message ?? `gcc exited ${r.status}`}\n`);
    process.exit(1);
  }
}
