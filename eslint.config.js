// Lint rules, including the layering of docs/architecture.md: a layer may import
// only from the layers below it (common <- sys <- proc <- infect|images <- resources
// <- dump|restore <- api <- cli), and no module may import itself back (no cycles).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';

const LAYERS = ['common', 'sys', 'proc', 'infect', 'images', 'resources', 'dump', 'restore', 'api', 'cli'];
const ALLOWED = {
  common: [],
  sys: ['common'],
  proc: ['common', 'sys'],
  infect: ['common', 'sys', 'proc'],
  images: ['common'],
  resources: ['common', 'sys', 'proc', 'infect', 'images'],
  dump: ['common', 'sys', 'proc', 'infect', 'images', 'resources'],
  restore: ['common', 'sys', 'proc', 'infect', 'images', 'resources'],
  api: ['common', 'sys', 'proc', 'infect', 'images', 'resources', 'dump', 'restore'],
  cli: ['common', 'api'],
};

function layerRule(layer) {
  const forbidden = LAYERS.filter((l) => l !== layer && !ALLOWED[layer].includes(l));
  return {
    files: [`src/${layer}/**/*.ts`],
    ignores: ['src/**/*.test.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [{
          regex: `^(\\.\\./)+(${forbidden.join('|')})(/|$)`,
          message: `layering: src/${layer} may import only from ${ALLOWED[layer].join(', ') || 'nothing else in src'} (see docs/architecture.md)`,
        }],
      }],
    },
  };
}

export default tseslint.config(
  { ignores: ['dist/**', 'tmp/**', 'node_modules/**', 'test/victims/**', 'bin/**', 'scripts/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    plugins: { 'import-x': importX },
    settings: { 'import-x/resolver-next': [createTypeScriptImportResolver({ project: './tsconfig.json' })] },
    rules: {
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'max-params': ['error', { max: 3 }],
    },
  },
  ...LAYERS.map(layerRule),
);
