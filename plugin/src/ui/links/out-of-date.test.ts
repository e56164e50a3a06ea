import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Checkout } from '../../../../shared/schemas/agent.ts';
import type { PlacedLink } from '../../../host/types.ts';
import { assetsToCheck, canUpdate, countOutOfDate, normalisePath, reportLinks } from './out-of-date.ts';

function checkout(id: string, path: string, assetId: string, baseVersion: string, updated = '2026-01-01T00:00:00Z'): Checkout {
  return { id, uri: `imagine://lib/images/${assetId}`, connection: 'lib', assetId, baseVersion, rendition: 'original', path, filename: 'x.jpg', state: 'ready', progress: { done: 1, total: 1 }, created: updated, updated };
}

function link(id: string, path: string, status: PlacedLink['status'] = 'normal'): PlacedLink {
  return { id, path, status, name: path.split(/[\\/]/).pop() ?? path };
}

test('Windows paths compare without case or slash direction; POSIX paths exactly', () => {
  assert.equal(normalisePath('C:\\Work\\A.jpg'), normalisePath('c:/work/a.JPG'));
  assert.notEqual(normalisePath('/work/A.jpg'), normalisePath('/work/a.jpg'));
});

test('a link whose checkout base is not the current version is out of date', () => {
  const checkouts = [checkout('c1', '/w/a.jpg', 'a', 'v1'), checkout('c2', '/w/b.jpg', 'b', 'v3')];
  const links = [link('1', '/w/a.jpg'), link('2', '/w/b.jpg'), link('3', '/elsewhere/c.jpg')];
  assert.deepEqual(assetsToCheck(links, checkouts).map((c) => c.assetId), ['a', 'b']);
  const reports = reportLinks(links, checkouts, new Map([['lib/a', 'v2'], ['lib/b', 'v3']]));
  assert.deepEqual(reports.map((r) => r.state), ['out-of-date', 'current', 'not-imagine']);
  assert.equal(reports[0]!.currentVersion, 'v2');
  assert.equal(countOutOfDate(reports), 1);
  assert.ok(canUpdate(reports[0]!));
  assert.ok(!canUpdate(reports[1]!));
  assert.ok(!canUpdate(reports[2]!));
});

test('the newest checkout of a path counts (a file updated in place)', () => {
  const checkouts = [checkout('old', '/w/a.jpg', 'a', 'v1', '2026-01-01T00:00:00Z'), checkout('new', '/w/a.jpg', 'a', 'v2', '2026-02-01T00:00:00Z')];
  const [report] = reportLinks([link('1', '/w/a.jpg')], checkouts, new Map([['lib/a', 'v2']]));
  assert.equal(report!.state, 'current');
  assert.equal(report!.checkout!.id, 'new');
});

test('deleted on the server, unknown (server unreachable), missing file', () => {
  const checkouts = [checkout('c1', '/w/a.jpg', 'a', 'v1'), checkout('c2', '/w/b.jpg', 'b', 'v1'), checkout('c3', '/w/c.jpg', 'c', 'v1')];
  const reports = reportLinks(
    [link('1', '/w/a.jpg'), link('2', '/w/b.jpg'), link('3', '/w/c.jpg', 'missing')],
    checkouts,
    new Map<string, string>([['lib/a', 'deleted'], ['lib/c', 'v2']]),
  );
  assert.deepEqual(reports.map((r) => r.state), ['deleted', 'unknown', 'missing']);
  assert.ok(canUpdate(reports[2]!), 'a missing file can be fetched again');
  assert.ok(!canUpdate(reports[0]!));
});
