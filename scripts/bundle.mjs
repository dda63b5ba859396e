#!/usr/bin/env node
// Bundles the CLI (src/cli/main.ts) into dist/bin/ckpt.cjs: one CommonJS file that
// bin/ckpt.js compiles with a V8 code cache (see bin/ckpt.js and docs/performance.md,
// "CLI start-up"). Loading ~200 separate modules (zod alone is ~100) cost more than
// running a small dump; compiling the bundle again on every run cost ~20 ms more.
// Each command's API module is still evaluated only when the command runs: esbuild
// turns `await import('../../api/dump.js')` into a lazy init of that part of the file,
// so `ckpt --version` builds no zod schema and loads no koffi.
// koffi stays external: it loads a native addon from its own package directory.
// `npm run build` (and so `npm ci` through prepare) runs this after tsc.
// `node scripts/bundle.mjs [OUTDIR]` (default dist/bin; the e2e test bundles aside).
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';

const root = new URL('..', import.meta.url).pathname;

// zod's z.locales namespace holds every message language (~400 kB of the ~750 kB zod
// adds to the bundle) and esbuild cannot drop a namespace re-export. ckpt uses only
// English (zod's default, imported by zod itself), so the namespace is cut down to it.
// A z.locales.xx() call in src would fail the bundled CLI: grep before using one.
const zodEnglishOnly = {
  name: 'zod-english-only',
  setup(b) {
    b.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) =>
      /[\\/]node_modules[\\/]zod[\\/]/.test(args.importer) ? { path: 'zod-locales', namespace: 'ckpt-stub', pluginData: args.resolveDir } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'ckpt-stub' }, (args) => ({
      contents: "export { default as en } from '../locales/en.js';",
      resolveDir: args.pluginData,
      loader: 'js',
    }));
  },
};

// commander requires node:child_process at its top (for executable subcommands, which
// ckpt has none of); loading it, with net and dgram, costs every CLI run ~3 ms. Made lazy:
// the same spawn, loaded on a call that never comes. If commander's line changes, the
// build says so and bundles it as it is.
const commanderLazyChildProcess = {
  name: 'commander-lazy-child-process',
  setup(b) {
    b.onLoad({ filter: /[\\/]node_modules[\\/]commander[\\/]lib[\\/]command\.js$/ }, (args) => {
      const eager = "const childProcess = require('node:child_process');";
      const src = readFileSync(args.path, 'utf8');
      if (!src.includes(eager)) {
        console.warn(`bundle: ${args.path} no longer has "${eager}": node:child_process stays eager`);
        return undefined;
      }
      return { contents: src.replace(eager, "const childProcess = { spawn: (...a) => require('node:child_process').spawn(...a) };"), loader: 'js' };
    });
  },
};

// The first line names the bundle's content: bin/ckpt.js keys its code cache on it (V8
// itself checks only the source length). Same length before and after, so the source
// map's lines stay right.
const HASH_LINE = `// ckpt-bundle sha256:${'0'.repeat(64)}`;
// The code is the body of a CommonJS module function, written out: bin/ckpt.js compiles
// the file as it is and gets that function back, instead of compiling its own wrapper
// around the ~1 MB source (a second copy of it, ~2 ms). Run by node or require()d, the
// file calls the function itself with the module's arguments.
const WRAP_HEAD = "((f) => typeof module === 'object' ? f(exports, require, module, __filename, __dirname) : f)(function (exports, require, module, __filename, __dirname) {";
const WRAP_TAIL = '})';

const outdir = resolve(root, process.argv[2] ?? 'dist/bin');
rmSync(outdir, { recursive: true, force: true });
mkdirSync(outdir, { recursive: true });
const outfile = `${outdir}/ckpt.cjs`;
await build({
  absWorkingDir: root,
  entryPoints: ['src/cli/main.ts'],
  outfile,
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  external: ['koffi'],
  // Smaller files parse faster; identifiers are kept so CKPT_DEBUG=1 stacks stay readable.
  minifyWhitespace: true,
  minifySyntax: true,
  keepNames: false,
  sourcemap: 'linked',
  legalComments: 'none',
  banner: { js: `${HASH_LINE}\n${WRAP_HEAD}` },
  footer: { js: WRAP_TAIL },
  plugins: [zodEnglishOnly, commanderLazyChildProcess],
  // import.meta has no meaning in CommonJS: code that needs its own path checks for undefined
  // (restore/lazy/client.ts then runs this bundle itself).
  define: { 'import.meta.url': 'undefined' },
  logLevel: 'warning',
});
const code = readFileSync(outfile, 'utf8');
if (!code.startsWith(`${HASH_LINE}\n`)) throw new Error(`${outfile} does not start with the hash line`);
const hash = createHash('sha256').update(code).digest('hex');
writeFileSync(outfile, `// ckpt-bundle sha256:${hash}${code.slice(HASH_LINE.length)}`);
