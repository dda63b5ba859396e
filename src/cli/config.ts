/**
 * CRIU's `--config FILE`: options from a file, one per line, without the leading `--`,
 * an argument after whitespace (in double quotes if it has spaces; `\"` inside them),
 * `#` starts a comment. They are applied before the command line's own, so that the
 * command line overrides them, as CRIU does. CRIU's default files
 * (/etc/criu/default.conf, ~/.criu/default.conf) are CRIU's and are not read.
 */
import { readFileSync } from 'node:fs';
import { CkptError } from '../common/errors.js';

/** One line → its arguments: `tcp-established` → ['--tcp-established'], `work-dir "/a b"` → ['--work-dir', '/a b']. */
export function configLine(line: string, where: string): string[] {
  let rest = line.trim();
  const name = /^[A-Za-z0-9][A-Za-z0-9-]*/.exec(rest)?.[0];
  if (rest === '' || rest.startsWith('#')) return [];
  if (!name) throw new CkptError('USAGE', `Cannot read config ${where}: "${line.trim()}" is not an option`);
  rest = rest.slice(name.length).trimStart();
  if (rest === '' || rest.startsWith('#')) return [`--${name}`];
  let value: string;
  if (rest.startsWith('"')) {
    const m = /^"((?:[^"\\]|\\.)*)"\s*(#.*)?$/.exec(rest);
    if (!m) throw new CkptError('USAGE', `Cannot read config ${where}: unbalanced quotes in "${line.trim()}"`);
    value = m[1]!.replace(/\\"/g, '"');
  } else {
    const m = /^(\S+)\s*(#.*)?$/.exec(rest);
    if (!m) throw new CkptError('USAGE', `Cannot read config ${where}: "${line.trim()}" has more than one argument`);
    value = m[1]!;
  }
  return [`--${name}`, value];
}

export function readConfig(file: string): string[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new CkptError('USAGE', `Cannot read config ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  return text.split('\n').flatMap((line, i) => configLine(line, `${file}:${i + 1}`));
}

/** argv with the options of every `--config FILE` put right after the command name. */
export function expandConfig(argv: readonly string[]): string[] {
  const files: string[] = [];
  const end = argv.indexOf('--');
  const head = end < 0 ? argv : argv.slice(0, end);
  head.forEach((a, i) => {
    if (a === '--config' && head[i + 1] !== undefined) files.push(head[i + 1]!);
    else if (a.startsWith('--config=')) files.push(a.slice('--config='.length));
  });
  if (files.length === 0 || argv.length === 0) return [...argv];
  return [argv[0]!, ...files.flatMap(readConfig), ...argv.slice(1)];
}
