/**
 * The CLI as installed (bin/ckpt.js and the esbuild bundle), built aside in a temporary
 * directory so that a stale dist does not matter: for tests that need the CLI's own
 * start-up and signal handling, or that run it many times.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { Cleanups } from './cleanup.js';

const root = new URL('../..', import.meta.url).pathname;

/** Builds the bundle and returns the path of its bin/ckpt.js. */
export function buildCli(cleanups: Cleanups): string {
  const install = join(cleanups.tempDir('ckpt-bundle-'), 'ckpt');
  mkdirSync(join(install, 'bin'), { recursive: true });
  for (const f of ['ckpt.js', 'package.json']) copyFileSync(join(root, 'bin', f), join(install, 'bin', f));
  symlinkSync(join(root, 'node_modules'), join(install, 'node_modules'));
  const b = spawnSync(process.execPath, [join(root, 'scripts/bundle.mjs'), join(install, 'dist/bin')], { cwd: root, encoding: 'utf8' });
  if (b.status !== 0) throw new Error(`cannot build the CLI bundle: ${b.stderr}`);
  return join(install, 'bin', 'ckpt.js');
}
