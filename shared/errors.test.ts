import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  ProtocolError,
  errorCodes,
  errorRegistry,
  fromProblem,
  isErrorCode,
  isProtocolError,
  problemType,
  toProblem,
  type ErrorCode,
} from './errors.ts';

const docsPath = new URL('../docs/errors.md', import.meta.url);

/** Rows of the code tables: | `ERR_X` | 400 | Title | When ... | */
function documentedCodes(): { code: string; status: number; title: string }[] {
  const rows: { code: string; status: number; title: string }[] = [];
  for (const line of readFileSync(docsPath, 'utf8').split('\n')) {
    const match = /^\|\s*`(ERR_[A-Z0-9_]+)`\s*\|\s*(\d{3})\s*\|\s*([^|]+?)\s*\|/.exec(line);
    if (match) rows.push({ code: match[1]!, status: Number(match[2]), title: match[3]! });
  }
  return rows;
}

describe('docs/errors.md', () => {
  const rows = documentedCodes();

  test('documents every registry code exactly once, and nothing else', () => {
    const documented = rows.map((r) => r.code);
    const duplicates = documented.filter((code, i) => documented.indexOf(code) !== i);
    assert.deepEqual(duplicates, [], 'codes documented more than once');
    assert.deepEqual([...documented].sort(), [...errorCodes].sort());
  });

  test("each documented status and title is the registry's", () => {
    for (const { code, status, title } of rows) {
      assert.ok(isErrorCode(code), `${code} is not in the registry`);
      assert.equal(status, errorRegistry[code].status, `status of ${code}`);
      assert.equal(title, errorRegistry[code].title, `title of ${code}`);
    }
  });
});

describe('errorRegistry', () => {
  test('codes are ERR_ names with client or server error statuses', () => {
    for (const code of errorCodes) {
      assert.match(code, /^ERR_[A-Z0-9_]+$/);
      const { status, title } = errorRegistry[code];
      assert.ok(status >= 400 && status <= 599, `${code}: ${status}`);
      assert.ok(title.length > 0 && !title.endsWith('.'), `${code}: "${title}"`);
    }
  });

  test('isErrorCode accepts registry codes only', () => {
    assert.equal(isErrorCode('ERR_INTERNAL'), true);
    assert.equal(isErrorCode('ERR_NOPE'), false);
    assert.equal(isErrorCode('toString'), false);
    assert.equal(isErrorCode(42), false);
  });
});

describe('ProtocolError', () => {
  test('takes status and title from the registry, keeps cause, and can override the status', () => {
    const cause = new Error('disk');
    const error = new ProtocolError('ERR_ASSET_NOT_FOUND', 'no asset "x"', { cause });
    assert.equal(error.name, 'ProtocolError');
    assert.equal(error.status, 404);
    assert.equal(error.title, 'No such asset');
    assert.equal(error.cause, cause);
    assert.deepEqual(error.extensions, {});
    assert.equal(new ProtocolError('ERR_UPSTREAM_ERROR', 'x', { status: 503 }).status, 503);
    assert.ok(isProtocolError(error));
    assert.ok(isProtocolError(error, 'ERR_ASSET_NOT_FOUND'));
    assert.ok(!isProtocolError(error, 'ERR_INTERNAL'));
    assert.ok(!isProtocolError(new Error('x')));
  });
});

describe('toProblem', () => {
  test('a ProtocolError keeps its code, message, status and extensions', () => {
    const error = new ProtocolError('ERR_VALIDATION', 'limit must be at most 200', {
      extensions: { issues: [{ path: '/limit', message: 'too big' }] },
    });
    assert.deepEqual(toProblem(error, '/api/v1/assets'), {
      type: 'urn:imagine:error:ERR_VALIDATION',
      title: 'Request does not match its schema',
      status: 400,
      detail: 'limit must be at most 200',
      instance: '/api/v1/assets',
      code: 'ERR_VALIDATION',
      issues: [{ path: '/limit', message: 'too big' }],
    });
  });

  test('an overridden status is kept; there is no instance unless given', () => {
    const problem = toProblem(new ProtocolError('ERR_UPSTREAM_ERROR', 'upstream 503', { status: 503 }));
    assert.equal(problem.status, 503);
    assert.equal(problem.code, 'ERR_UPSTREAM_ERROR');
    assert.equal('instance' in problem, false);
  });

  test('extensions cannot overwrite the standard members', () => {
    const error = new ProtocolError('ERR_CONFLICT', 'taken', {
      extensions: { code: 'ERR_INTERNAL', status: 200, type: 'x', title: 'y', detail: 'z' },
    });
    const problem = toProblem(error);
    assert.equal(problem.code, 'ERR_CONFLICT');
    assert.equal(problem.status, 409);
    assert.equal(problem.type, problemType('ERR_CONFLICT'));
    assert.equal(problem.title, 'Conflicts with the current state');
    assert.equal(problem.detail, 'taken');
  });

  test('a plain Error becomes ERR_INTERNAL with a generic detail that does not leak its message', () => {
    const secret = 'ENOENT: /home/studio/.imagine/keys/private.pem at line 42';
    for (const thrown of [new Error(secret), new TypeError(secret), secret, { message: secret }, undefined]) {
      const problem = toProblem(thrown, '/x');
      assert.equal(problem.code, 'ERR_INTERNAL');
      assert.equal(problem.status, 500);
      assert.equal(problem.type, 'urn:imagine:error:ERR_INTERNAL');
      assert.equal(problem.title, 'Internal error');
      assert.equal(typeof problem.detail, 'string');
      assert.ok(!JSON.stringify(problem).includes('private.pem'), 'the original message leaked');
    }
  });

  test('every code produces its registry status and a urn type', () => {
    for (const code of errorCodes) {
      const problem = toProblem(new ProtocolError(code, 'x'));
      assert.equal(problem.status, errorRegistry[code].status);
      assert.equal(problem.type, `urn:imagine:error:${code}`);
    }
  });
});

describe('fromProblem', () => {
  test('a known code comes back as that code, with the detail as message and the HTTP status', () => {
    const sent = toProblem(new ProtocolError('ERR_PRECONDITION_FAILED', 'base v1 is not current'));
    const error = fromProblem(JSON.parse(JSON.stringify(sent)), 412);
    assert.ok(isProtocolError(error, 'ERR_PRECONDITION_FAILED'));
    assert.equal(error.message, 'base v1 is not current');
    assert.equal(error.status, 412);
  });

  test('round trip: every code survives toProblem → JSON → fromProblem', () => {
    for (const code of errorCodes) {
      const problem = toProblem(new ProtocolError(code, `detail of ${code}`));
      const back = fromProblem(JSON.parse(JSON.stringify(problem)), problem.status);
      assert.equal(back.code, code);
      assert.equal(back.message, `detail of ${code}`);
    }
  });

  test('the title is the message when there is no detail', () => {
    const error = fromProblem({ code: 'ERR_FORBIDDEN', title: 'Not allowed' }, 403);
    assert.equal(error.message, 'Not allowed');
  });

  test('an unknown code: ERR_UPSTREAM_ERROR keeping the remote code and status', () => {
    const error = fromProblem(
      { type: 'urn:imagine:error:ERR_NEWER', title: 'Newer', status: 418, detail: 'from a newer server', code: 'ERR_NEWER' },
      418,
    );
    assert.equal(error.code, 'ERR_UPSTREAM_ERROR');
    assert.equal(error.message, 'from a newer server');
    assert.equal(error.status, 418);
    assert.deepEqual(error.extensions, { remoteStatus: 418, remoteCode: 'ERR_NEWER' });
  });

  test('a body that is not an object: ERR_UPSTREAM_ERROR naming the status', () => {
    for (const body of [null, undefined, 'Bad Gateway', 42, ['ERR_INTERNAL']]) {
      const error = fromProblem(body, 502);
      assert.equal(error.code, 'ERR_UPSTREAM_ERROR' satisfies ErrorCode);
      assert.equal(error.status, 502);
      assert.equal(error.extensions.remoteStatus, 502);
      assert.match(error.message, /502/);
    }
  });
});
