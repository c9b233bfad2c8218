/**
 * The heap-snapshot reader behind bench/heap-diff.ts, on a hand-made snapshot in V8's format: counts and self sizes
 * by constructor, retained sizes from the dominator tree (a shared object is retained by neither sharer, a weak
 * edge retains nothing, nested objects of one class are not counted twice), and the per-connection diff.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { diffSummaries, summarizeHeap } from '../../bench/heap-snapshot.js';

const NODE_TYPES = ['hidden', 'array', 'string', 'object', 'code', 'closure', 'native', 'synthetic'];
const EDGE_TYPES = ['context', 'element', 'property', 'internal', 'hidden', 'shortcut', 'weak'];

interface N {
  type: string;
  name: string;
  size: number;
  edges: [type: string, to: number][];
}

/** A snapshot with `nodes` (node 0 is the root) in V8's flat layout. */
function snapshot(nodes: N[]): Parameters<typeof summarizeHeap>[0] {
  const strings: string[] = [''];
  const str = (s: string): number => {
    const i = strings.indexOf(s);
    return i >= 0 ? i : strings.push(s) - 1;
  };
  const flatNodes: number[] = [];
  const flatEdges: number[] = [];
  nodes.forEach((n, id) => {
    flatNodes.push(NODE_TYPES.indexOf(n.type), str(n.name), id, n.size, n.edges.length, 0, 0);
    for (const [t, to] of n.edges) flatEdges.push(EDGE_TYPES.indexOf(t), str('e'), to * 7);
  });
  return {
    snapshot: {
      meta: {
        node_fields: ['type', 'name', 'id', 'self_size', 'edge_count', 'trace_node_id', 'detachedness'],
        node_types: [NODE_TYPES],
        edge_fields: ['type', 'name_or_index', 'to_node'],
        edge_types: [EDGE_TYPES],
      },
    },
    nodes: flatNodes,
    edges: flatEdges,
    strings,
  };
}

describe('bench heap-snapshot reader', () => {
  // root -> conn1 -> own1 (20), conn1 -> shared (30); root -> conn2 -> shared; conn2 -> inner Conn (10);
  // root -weak-> lost (never retained by anyone: unreachable through strong edges).
  const heap = snapshot([
    {
      type: 'synthetic',
      name: '',
      size: 0,
      edges: [
        ['element', 1],
        ['element', 2],
        ['weak', 6],
      ],
    },
    {
      type: 'object',
      name: 'Conn',
      size: 100,
      edges: [
        ['property', 3],
        ['property', 4],
      ],
    },
    {
      type: 'object',
      name: 'Conn',
      size: 100,
      edges: [
        ['property', 4],
        ['property', 5],
      ],
    },
    { type: 'closure', name: 'onData', size: 20, edges: [] },
    { type: 'array', name: '(object elements)', size: 30, edges: [] },
    { type: 'object', name: 'Conn', size: 10, edges: [] },
    { type: 'string', name: 'lost', size: 99, edges: [] },
  ]);

  it('totals count, self and retained size by constructor, without double counting', () => {
    const s = summarizeHeap(heap);
    assert.deepEqual(s.get('Conn'), { count: 3, selfSize: 210, retainedSize: 120 + 110 });
    assert.deepEqual(s.get('(closure) onData'), { count: 1, selfSize: 20, retainedSize: 20 });
    assert.deepEqual(s.get('(array) (object elements)'), { count: 1, selfSize: 30, retainedSize: 30 });
    assert.equal(s.get('(string)'), undefined, 'an object reached only through a weak edge is not counted');
  });

  it('diffs two summaries per connection, largest self size first', () => {
    const before = summarizeHeap(snapshot([{ type: 'synthetic', name: '', size: 0, edges: [] }]));
    const rows = diffSummaries(before, summarizeHeap(heap), 2);
    assert.deepEqual(rows[0], { key: 'Conn', count: 1.5, selfBytes: 105, retainedBytes: 115 });
    assert.deepEqual(
      rows.map((r) => r.key),
      ['Conn', '(array) (object elements)', '(closure) onData', '(synthetic) '],
    );
  });
});
