/**
 * Reads a V8 `.heapsnapshot` (the JSON Node writes for `--heapsnapshot-signal`, `v8.writeHeapSnapshot()` or the
 * inspector's `HeapProfiler.takeHeapSnapshot`) into totals by constructor: count, self size and retained size. No
 * dependency: the format is described by the snapshot's own `snapshot.meta` (`node_fields`, `edge_fields`, the
 * type name lists); nodes and edges are flat integer arrays, a node's edges follow those of the nodes before it.
 *
 * Retained sizes come from the dominator tree (Cooper, Harvey and Kennedy's iterative algorithm over a reverse
 * postorder from the synthetic root, weak edges left out as DevTools does). A class's retained size counts only
 * its objects whose dominator chain holds no other object of the same class, so nested ones are not counted twice.
 */

interface RawSnapshot {
  snapshot: {
    meta: {
      node_fields: string[];
      node_types: [string[], ...unknown[]];
      edge_fields: string[];
      edge_types: [string[], ...unknown[]];
    };
  };
  nodes: number[];
  edges: number[];
  strings: string[];
}

/** One row: a constructor (or a V8 internal kind in parentheses) and its totals. */
export interface ClassTotals {
  count: number;
  selfSize: number;
  retainedSize: number;
}

export type HeapSummary = Map<string, ClassTotals>;

/** Node types whose names are values (strings, numbers) or code, not constructors: grouped by type alone. */
const BY_TYPE_ONLY = new Set([
  'string',
  'concatenated string',
  'sliced string',
  'number',
  'bigint',
  'code',
  'regexp',
]);

/** The row a node is counted in. */
function classKey(type: string, name: string): string {
  if (BY_TYPE_ONLY.has(type)) return `(${type})`;
  if (type === 'object') return name;
  if (type === 'closure') return `(closure) ${name || '(anonymous)'}`;
  // 'hidden' names such as `system / Context`, 'array' names such as `(object elements)`, 'native' backing stores.
  const short = name.length > 60 ? `${name.slice(0, 57)}...` : name;
  return `(${type}) ${short}`;
}

/** Totals by constructor of a parsed snapshot. */
export function summarizeHeap(raw: RawSnapshot): HeapSummary {
  const meta = raw.snapshot.meta;
  const nf = meta.node_fields.length;
  const ef = meta.edge_fields.length;
  const typeAt = meta.node_fields.indexOf('type');
  const nameAt = meta.node_fields.indexOf('name');
  const sizeAt = meta.node_fields.indexOf('self_size');
  const edgeCountAt = meta.node_fields.indexOf('edge_count');
  const edgeTypeAt = meta.edge_fields.indexOf('type');
  const toAt = meta.edge_fields.indexOf('to_node');
  const nodeTypes = meta.node_types[0];
  const weak = meta.edge_types[0].indexOf('weak');
  const { nodes, edges, strings } = raw;
  const n = nodes.length / nf;

  // Forward edges (without weak ones) as CSR, and each node's class index.
  const firstEdge = new Uint32Array(n + 1);
  for (let i = 0, e = 0; i < n; i++) {
    firstEdge[i] = e;
    e += (nodes[i * nf + edgeCountAt] as number) * ef;
    firstEdge[i + 1] = e;
  }
  const keys: string[] = [];
  const keyIndex = new Map<string, number>();
  const cls = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const k = classKey(
      nodeTypes[nodes[i * nf + typeAt] as number] ?? '?',
      strings[nodes[i * nf + nameAt] as number] ?? '',
    );
    let ki = keyIndex.get(k);
    if (ki === undefined) {
      ki = keys.length;
      keys.push(k);
      keyIndex.set(k, ki);
    }
    cls[i] = ki;
  }
  const succ = (i: number, visit: (j: number) => void): void => {
    for (let e = firstEdge[i] as number; e < (firstEdge[i + 1] as number); e += ef) {
      if (edges[e + edgeTypeAt] === weak) continue;
      visit((edges[e + toAt] as number) / nf);
    }
  };
  const { order, rank } = postorder(n, succ);
  const idom = dominators(n, order, rank, succ);
  // Retained sizes: each node's self size added to its dominators', children before parents (postorder).
  const retained = new Float64Array(n);
  for (let i = 0; i < n; i++) retained[i] = nodes[i * nf + sizeAt] as number;
  for (const i of order) {
    const d = idom[i] as number;
    if (i !== 0 && d >= 0) retained[d] = (retained[d] as number) + (retained[i] as number);
  }

  const out: HeapSummary = new Map();
  for (let i = 0; i < n; i++) {
    if (rank[i] === UNREACHED) continue;
    const key = keys[cls[i] as number] as string;
    let t = out.get(key);
    if (!t) out.set(key, (t = { count: 0, selfSize: 0, retainedSize: 0 }));
    t.count++;
    t.selfSize += nodes[i * nf + sizeAt] as number;
    if (!dominatedBySameClass(i, idom, cls)) t.retainedSize += retained[i] as number;
  }
  return out;
}

const UNREACHED = 0xffffffff;

/** Postorder of the nodes reachable from node 0 (iterative: snapshots are far deeper than the call stack). */
function postorder(
  n: number,
  succ: (i: number, visit: (j: number) => void) => void,
): { order: number[]; rank: Uint32Array } {
  const rank = new Uint32Array(n).fill(UNREACHED);
  const seen = new Uint8Array(n);
  const order: number[] = [];
  const stack: number[] = [0];
  const expanded = new Uint8Array(n);
  seen[0] = 1;
  while (stack.length > 0) {
    const i = stack[stack.length - 1] as number;
    if (expanded[i]) {
      stack.pop();
      rank[i] = order.length;
      order.push(i);
      continue;
    }
    expanded[i] = 1;
    succ(i, (j) => {
      if (seen[j]) return;
      seen[j] = 1;
      stack.push(j);
    });
  }
  return { order, rank };
}

/** Immediate dominators (-1 for the root and unreachable nodes), Cooper-Harvey-Kennedy. */
function dominators(
  n: number,
  order: number[],
  rank: Uint32Array,
  succ: (i: number, visit: (j: number) => void) => void,
): Int32Array {
  // Predecessors of reachable nodes, in CSR form.
  const predCount = new Uint32Array(n + 1);
  for (const i of order) succ(i, (j) => void (predCount[j] = (predCount[j] as number) + 1));
  const predStart = new Uint32Array(n + 1);
  for (let i = 0; i < n; i++) predStart[i + 1] = (predStart[i] as number) + (predCount[i] as number);
  const fill = predStart.slice();
  const preds = new Uint32Array(predStart[n] as number);
  for (const i of order)
    succ(i, (j) => {
      const at = fill[j] as number;
      preds[at] = i;
      fill[j] = at + 1;
    });

  const idom = new Int32Array(n).fill(-1);
  idom[0] = 0;
  const intersect = (a: number, b: number): number => {
    while (a !== b) {
      while ((rank[a] as number) < (rank[b] as number)) a = idom[a] as number;
      while ((rank[b] as number) < (rank[a] as number)) b = idom[b] as number;
    }
    return a;
  };
  for (let changed = true; changed;) {
    changed = false;
    for (let k = order.length - 1; k >= 0; k--) {
      const i = order[k] as number;
      if (i === 0) continue;
      let d = -1;
      for (let p = predStart[i] as number; p < (predStart[i + 1] as number); p++) {
        const q = preds[p] as number;
        if (idom[q] === -1) continue;
        d = d === -1 ? q : intersect(q, d);
      }
      if (d !== -1 && idom[i] !== d) {
        idom[i] = d;
        changed = true;
      }
    }
  }
  idom[0] = -1;
  return idom;
}

function dominatedBySameClass(i: number, idom: Int32Array, cls: Uint32Array): boolean {
  for (let d = idom[i] as number; d > 0; d = idom[d] as number) if (cls[d] === cls[i]) return true;
  return false;
}

/** One row of a diff, per connection. */
export interface DiffRow {
  readonly key: string;
  readonly count: number;
  readonly selfBytes: number;
  readonly retainedBytes: number;
}

/** `after - before` per class, divided by `connections`, largest self size first. */
export function diffSummaries(before: HeapSummary, after: HeapSummary, connections: number): DiffRow[] {
  const rows: DiffRow[] = [];
  for (const [key, a] of after) {
    const b = before.get(key) ?? { count: 0, selfSize: 0, retainedSize: 0 };
    rows.push({
      key,
      count: (a.count - b.count) / connections,
      selfBytes: (a.selfSize - b.selfSize) / connections,
      retainedBytes: (a.retainedSize - b.retainedSize) / connections,
    });
  }
  return rows.sort((x, y) => y.selfBytes - x.selfBytes);
}
