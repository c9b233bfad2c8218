// Lint: typescript-eslint's type-aware recommended rules plus the project's conventions (STYLE.md).
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'docs/api/**', 'node_modules/**', 'scripts/**', '.ci/**', 'eslint.config.js'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      // `#private` over the `private` keyword: real privacy at run time, as Deno std enforces.
      'no-restricted-syntax': [
        'error',
        { selector: 'TSParameterProperty[accessibility="private"]', message: 'Use #private fields.' },
        { selector: 'PropertyDefinition[accessibility="private"]', message: 'Use #private fields.' },
        { selector: 'TSEnumDeclaration', message: 'Use an `as const` list and a derived union.' },
      ],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      eqeqeq: ['error', 'smart'],
    },
  },
);
