/**
 * The exit codes have one source, errors.ts (EXIT_CODE_MEANINGS and exitCodeFor): every `| exit | codes | meaning |`
 * table in README.md and docs/ must say what it says, so the documentation cannot drift from the code.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ERROR_CODES, EXIT_CODE_MEANINGS, exitCodeFor } from '../../src/errors.js';

/** The statuses that move a code to another exit (a rejected upgrade's 401 and 403). */
const STATUSES = [401, 403] as const;

/** The codes cell the source gives exit `n`: each error code exiting with it, and the statuses that send one there. */
function expectedCodes(n: number): string {
  const cells: string[] = [];
  for (const c of ERROR_CODES) {
    if (exitCodeFor(c) === n) cells.push(`\`${c}\``);
    for (const s of STATUSES)
      if (exitCodeFor(c) !== n && exitCodeFor(c, s) === n) cells.push(`\`${c}\` (${s})`);
  }
  return cells.join(', ');
}

/** Rows `[exit, codes, meaning]` of every exit-code table in a markdown file. */
function exitTables(text: string): string[][][] {
  const tables: string[][][] = [];
  let rows: string[][] | undefined;
  for (const line of text.split('\n')) {
    const cells = line.startsWith('|')
      ? line
          .split('|')
          .slice(1, -1)
          .map((c) => c.trim())
      : undefined;
    if (cells && cells[0] === 'exit' && cells[1] === 'codes' && cells[2] === 'meaning')
      tables.push((rows = []));
    else if (!cells) rows = undefined;
    else if (rows && !/^-+$/.test(cells[0] ?? '')) rows.push(cells);
  }
  return tables;
}

const DOCS = ['README.md', ...fs.readdirSync('docs').map((f) => path.join('docs', f))].filter((f) =>
  f.endsWith('.md'),
);

describe('exit codes: the docs say what errors.ts says', () => {
  it('README.md has the whole table', () => {
    const [table] = exitTables(fs.readFileSync('README.md', 'utf8'));
    assert.ok(table, 'no exit-code table in README.md');
    assert.deepEqual(
      table.map((r) => Number(r[0])),
      Object.keys(EXIT_CODE_MEANINGS).map(Number),
    );
  });

  for (const file of DOCS) {
    it(`${file}: every exit-code row matches the source`, () => {
      for (const table of exitTables(fs.readFileSync(file, 'utf8'))) {
        for (const [exit, codes, meaning] of table) {
          const n = Number(exit) as keyof typeof EXIT_CODE_MEANINGS;
          assert.equal(meaning, EXIT_CODE_MEANINGS[n], `${file}: exit ${exit}`);
          assert.equal(codes, expectedCodes(n), `${file}: exit ${exit}`);
        }
      }
    });
  }

  it('every error code exits with a documented code', () => {
    for (const c of ERROR_CODES) assert.ok(exitCodeFor(c) in EXIT_CODE_MEANINGS, c);
  });
});
