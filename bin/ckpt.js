#!/usr/bin/env node
// Runs the compiled CLI; `npm install` / `npm ci` build it through the prepare script.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
if (!existsSync(main)) {
  process.stderr.write(`ckpt: cannot start: ${main} is missing; run "npm install" (or "npm run build") first\n`);
  process.exit(70);
}
await import(main);
