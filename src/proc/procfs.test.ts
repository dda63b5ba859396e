import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { forEachLine } from './procfs.js';

function linesOf(path: string): string[] {
  const out: string[] = [];
  forEachLine(path, (buf, start, end) => out.push(buf.toString('utf8', start, end)));
  return out;
}

test('forEachLine: lines across chunk boundaries, a line longer than the buffer, no final newline', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ckpt-lines-'));
  try {
    const lines = Array.from({ length: 30000 }, (_, i) => `line ${i} ${'x'.repeat(i % 97)} é`);
    lines.splice(12345, 0, 'y'.repeat(600 * 1024), '');
    const path = join(dir, 'f');
    writeFileSync(path, lines.join('\n'));
    assert.deepEqual(linesOf(path), lines);
    writeFileSync(path, `${lines.slice(0, 3).join('\n')}\n`);
    assert.deepEqual(linesOf(path), lines.slice(0, 3));
    writeFileSync(path, '');
    assert.deepEqual(linesOf(path), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
