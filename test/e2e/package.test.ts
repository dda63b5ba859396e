/**
 * What `npm pack` ships: dist (no source maps, no tests), bin, docs, README and LICENSE,
 * nothing else (no tests, C victims, bench, sources). Runs `npm pack --dry-run` without
 * scripts (prepare would rebuild dist): the list is of the dist there is.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('../..', import.meta.url).pathname;

test('npm pack ships dist, bin, docs, README and LICENSE only', () => {
  const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const files = (JSON.parse(r.stdout) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path);
  for (const f of files) {
    assert.match(f, /^(dist\/|bin\/ckpt\.js$|bin\/package\.json$|docs\/[\w-]+\.md$|README\.md$|LICENSE$|package\.json$)/, `${f} is shipped`);
    assert.doesNotMatch(f, /\.map$|\.test\.|\/test\/|\/bench\/|\/victims\//, `${f} is shipped`);
  }
  for (const f of ['LICENSE', 'README.md', 'bin/ckpt.js', 'docs/cli.md', 'package.json']) assert.ok(files.includes(f), `${f} is missing`);
  // The build's outputs, when there is a build.
  if (existsSync(join(root, 'dist/man/ckpt.1'))) {
    for (const f of ['dist/bin/ckpt.cjs', 'dist/api/index.js', 'dist/api/index.d.ts', 'dist/man/ckpt.1', 'dist/completion/ckpt.bash']) assert.ok(files.includes(f), `${f} is missing`);
  }
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { man: string[]; exports: Record<string, unknown>; os: string[]; cpu: string[] };
  // npm links man pages on a global install only from an array (bin-links' linkMans).
  assert.deepEqual(pkg.man, ['./dist/man/ckpt.1']);
  assert.deepEqual(pkg.os, ['linux']);
  assert.deepEqual(pkg.cpu, ['x64']);
  assert.ok(pkg.exports['.']);
});
