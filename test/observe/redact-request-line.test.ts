import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { redactHeadText, redactTarget } from '../../src/observe/redact.js';

describe('redact: secrets in the request line', () => {
  it('replaces secret-looking query values, keeps the rest', () => {
    assert.equal(
      redactTarget('/chat?token=abc&room=1&api_key=k&x=token'),
      '/chat?token=***&room=1&api_key=***&x=token',
    );
    assert.equal(redactTarget('/plain'), '/plain');
  });

  it('applies to the request line of a head, not to a status line', () => {
    const text = 'GET /ws?access_token=s3cr3t HTTP/1.1\nHost: h\nAuthorization: Bearer zz';
    assert.equal(
      redactHeadText(text),
      'GET /ws?access_token=*** HTTP/1.1\nHost: h\nAuthorization: Bearer ***',
    );
    assert.equal(redactHeadText('HTTP/1.1 200 OK\nX: ?token=1'), 'HTTP/1.1 200 OK\nX: ?token=1');
  });
});
