import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KeptPages } from './kept-pages.js';

test('kept pages answer only for the file and range they hold', () => {
  const k = new KeptPages();
  const a = k.room('/img/pages-1.img', { fileStart: 4096, bytes: 8192 })!;
  a.fill(1, 0, 4096);
  a.fill(2, 4096);
  assert.deepEqual([...k.get('/img/pages-1.img', 8192, 4096)!].slice(0, 2), [2, 2]);
  assert.equal(k.get('/img/pages-1.img', 8192, 8192), undefined, 'past the piece');
  assert.equal(k.get('/img/pages-1.img', 0, 4096), undefined, 'before the piece');
  assert.equal(k.get('/img/pages-2.img', 4096, 4096), undefined, 'another file');
  for (let i = 0; i < 3; i++) assert.ok(k.room('/img/pages-2.img', { fileStart: i * 4096, bytes: 4096 }));
  assert.equal(k.room('/img/pages-2.img', { fileStart: 99 * 4096, bytes: 4096 }), undefined, 'over the budget');
});
