// Lint: typescript-eslint's type-aware recommended rules plus the project's conventions (STYLE.md).
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'node_modules/**',
      'scripts/**',
      '.ci/**',
      'eslint.config.js',
      'docs/**',
      'api/**',
      '**/*.mjs',
      'examples/**/web/**',
    ],
  },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // `#private` over the `private` keyword: real privacy at run time, as Deno std enforces.
      'no-restricted-syntax': [
        'error',
        { selector: 'TSParameterProperty[accessibility="private"]', message: 'Use #private fields.' },
        { selector: 'PropertyDefinition[accessibility="private"]', message: 'Use #private fields.' },
        { selector: 'TSEnumDeclaration', message: 'Use an `as const` list and a derived union.' },
      ],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // STYLE.md trap 13: a fire-and-forget promise whose rejection nothing catches exits the process. `void p`
      // does not count as handling it.
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          ignoreVoid: false,
          // node:test's test()/describe() return promises the runner itself awaits and reports.
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite'] },
          ],
        },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      // Passing on what a catch caught (an `unknown`) is how errors travel through our promise plumbing.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingUnknown: true }],
      // ws's RawData is a Buffer unless binaryType is changed, which wsvia never does.
      '@typescript-eslint/no-base-to-string': [
        'error',
        { ignoredTypeNames: ['Error', 'RegExp', 'URL', 'URLSearchParams', 'RawData'] },
      ],
      eqeqeq: ['error', 'smart'],
    },
  },
);
