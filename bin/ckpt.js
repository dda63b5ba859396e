#!/usr/bin/env node
// Runs the bundled CLI (dist/bin/, scripts/bundle.mjs), or the plain tsc output if only
// that was built. `npm install` / `npm ci` build both through the prepare script.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const candidates = ['../dist/bin/ckpt.js', '../dist/cli/main.js'].map((p) => fileURLToPath(new URL(p, import.meta.url)));
const main = candidates.find((p) => existsSync(p));
if (!main) {
  process.stderr.write(`ckpt: cannot start: ${candidates[0]} is missing; run "npm install" (or "npm run build") first\n`);
  process.exit(70);
}
await import(main);
