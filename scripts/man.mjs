#!/usr/bin/env node
// Generates the man page ckpt(1) from docs/cli.md: `node scripts/man.mjs [OUT]`
// (default dist/man/ckpt.1; `npm run build` runs it, package.json's "man" installs it).
// A small Markdown subset, the one docs/cli.md uses: headings, paragraphs, tables of
// two or three columns (each row becomes a tagged paragraph), fenced code, inline code
// (bold), links (their text), bold.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const out = resolve(process.argv[2] ?? `${root}dist/man/ckpt.1`);
const pkg = JSON.parse(readFileSync(`${root}package.json`, 'utf8'));
const md = readFileSync(`${root}docs/cli.md`, 'utf8');

/** roff-escapes plain text: backslashes, and a leading dot or quote that roff would take as a request. */
function esc(text) {
  return text.replace(/\\/g, '\\e').replace(/-/g, '\\-');
}

function inline(text) {
  let s = '';
  // `code` → bold, **bold** → bold, [text](url) → text
  const re = /`([^`]*)`|\*\*([^*]*)\*\*|\[([^\]]*)\]\([^)]*\)/g;
  let last = 0;
  for (const m of text.matchAll(re)) {
    s += esc(text.slice(last, m.index));
    if (m[1] !== undefined) s += `\\fB${esc(m[1])}\\fR`;
    else if (m[2] !== undefined) s += `\\fB${esc(m[2])}\\fR`;
    else s += esc(m[3]);
    last = m.index + m[0].length;
  }
  s += esc(text.slice(last));
  return s.replace(/^([.'])/, '\\&$1');
}

const cells = (row) => row.replace(/^\||\|$/g, '').split(/(?<!\\)\|/).map((c) => c.trim());

const lines = md.split('\n');
const roff = [`.TH CKPT 1 "" "ckpt ${pkg.version}" "User Commands"`, '.SH NAME', `ckpt \\- ${esc(pkg.description)}`];
let para = [];
const flush = () => {
  if (para.length > 0) roff.push('.PP', inline(para.join(' ')));
  para = [];
};
for (let i = 0; i < lines.length; i++) {
  const line = lines[i];
  if (line.startsWith('# ')) {
    flush();
    roff.push('.SH SYNOPSIS');
    continue;
  }
  const h = /^(##+) (.*)$/.exec(line);
  if (h) {
    flush();
    roff.push(h[1].length === 2 ? `.SH ${inline(h[2].toUpperCase())}` : `.SS ${inline(h[2])}`);
    continue;
  }
  if (line.startsWith('```')) {
    flush();
    roff.push('.PP', '.nf', '.RS 4');
    for (i++; i < lines.length && !lines[i].startsWith('```'); i++) roff.push(esc(lines[i]).replace(/^([.'])/, '\\&$1'));
    roff.push('.RE', '.fi');
    continue;
  }
  if (line.startsWith('|')) {
    flush();
    const header = cells(line);
    i++; // the |---| line
    for (i++; i < lines.length && lines[i].startsWith('|'); i++) {
      const c = cells(lines[i]);
      const rest = c.slice(1).filter((x) => x !== '');
      const extra = header.length === 3 && header[1] ? `(${c[1]}) ` : '';
      roff.push('.TP', inline(c[0]), inline(header.length === 3 ? `${extra}${c[2] ?? ''}` : rest.join(' ')));
    }
    i--;
    continue;
  }
  if (line.trim() === '') flush();
  else para.push(line.trim());
}
flush();
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${roff.join('\n')}\n`);
