#!/usr/bin/env node
// Bundles the CLI (src/cli/main.ts) into dist/bin/: one ESM entry plus one chunk per
// lazily loaded command, so `ckpt --version` reads one small file and `ckpt dump`
// reads what dump needs. Loading ~200 separate modules (zod alone is ~100) cost
// more than running a small dump; see docs/performance.md "CLI start-up".
// koffi stays external: it loads a native addon from its own package directory.
// `npm run build` (and so `npm ci` through prepare) runs this after tsc.
import { build } from 'esbuild';
import { rmSync } from 'node:fs';

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
const outdir = `${root}dist/bin`;
rmSync(outdir, { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints: { ckpt: 'src/cli/main.ts' },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['koffi'],
  // Smaller files parse faster; identifiers are kept so CKPT_DEBUG=1 stacks stay readable.
  minifyWhitespace: true,
  minifySyntax: true,
  keepNames: false,
  sourcemap: 'linked',
  legalComments: 'none',
  // commander is CommonJS: its require() calls of node builtins need a real require.
  banner: { js: "import { createRequire as __ckptRequire } from 'node:module'; const require = __ckptRequire(import.meta.url);" },
  plugins: [zodEnglishOnly],
  logLevel: 'warning',
});
