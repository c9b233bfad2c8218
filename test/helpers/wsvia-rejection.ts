/** The WsviaError a promise rejects with; fails the test if it resolves or rejects with anything else. */
import assert from 'node:assert/strict';
import { isWsviaError, type WsviaError } from '../../src/errors.js';

export async function wsviaRejection(p: Promise<unknown>): Promise<WsviaError> {
  try {
    await p;
  } catch (e) {
    assert.ok(isWsviaError(e), `expected a WsviaError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected a rejection');
}
