/**
 * The docs' runnable examples: a fenced block opened with "```sh runnable" holds commands a user can paste on one
 * machine; lines ending in " &" start servers, the others run in order. An optional "```text output" block right
 * after it is the shape of what the commands print on stdout: line by line, "..." standing for any text.
 */

export interface DocExample {
  readonly file: string;
  /** 1-based line of the opening fence. */
  readonly line: number;
  readonly commands: readonly string[];
  /** The expected output's lines, when the docs show one. */
  readonly expected: readonly string[] | undefined;
}

const OPEN = /^```sh runnable\s*$/;
const OUTPUT = /^```text output\s*$/;
const CLOSE = /^```\s*$/;

/** Collects the fenced block that starts after `start` (the fence's own index); returns its lines and the close index. */
function block(lines: readonly string[], start: number, file: string): { body: string[]; end: number } {
  const end = lines.findIndex((l, i) => i > start && CLOSE.test(l));
  if (end === -1) throw new Error(`${file}:${start + 1}: a runnable block is never closed`);
  return { body: lines.slice(start + 1, end), end };
}

/** Every runnable example in one Markdown text. */
export function extractExamples(markdown: string, file: string): DocExample[] {
  const lines = markdown.split('\n');
  const examples: DocExample[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!OPEN.test(lines[i] ?? '')) continue;
    const { body, end } = block(lines, i, file);
    const next = lines.findIndex((l, j) => j > end && l.trim() !== '');
    let expected: string[] | undefined;
    if (next !== -1 && OUTPUT.test(lines[next] ?? '')) expected = block(lines, next, file).body;
    const commands = body
      .map((l) => l.replace(/\s+#.*$/, '').trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    examples.push({ file, line: i + 1, commands, expected });
    i = end;
  }
  return examples;
}

/** The ports an example uses: every N in `127.0.0.1:N`, each once. */
export function portsIn(commands: readonly string[]): number[] {
  const ports = new Set<number>();
  for (const c of commands) for (const m of c.matchAll(/127\.0\.0\.1:(\d{4,5})\b/g)) ports.add(Number(m[1]));
  return [...ports];
}

/**
 * Rewrites every whole-word occurrence of each port in `map` to the port the test chose, so examples written with
 * fixed ports run beside other tests.
 */
export function rewritePorts(commands: readonly string[], map: ReadonlyMap<number, number>): string[] {
  return commands.map((c) => c.replace(/\b\d{4,5}\b/g, (n) => String(map.get(Number(n)) ?? n)));
}

/** Whether `actual` has the shape `expected` shows: the same number of lines, "..." matching any text in a line. */
export function matchesShape(expected: readonly string[], actual: readonly string[]): boolean {
  if (expected.length !== actual.length) return false;
  return expected.every((e, i) => {
    const pattern = e
      .trimEnd()
      .split('...')
      .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*');
    return new RegExp(`^${pattern}$`).test((actual[i] ?? '').trimEnd());
  });
}

/** The port a server line listens on (`--port N`, `--listen [HOST:]N`), when it names one. */
export function listeningPort(command: string): number | undefined {
  const m = /--(?:port|listen)[ =](?:\S*:)?(\d{2,5})\b/.exec(command);
  return m ? Number(m[1]) : undefined;
}
