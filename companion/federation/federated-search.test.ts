import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Asset } from '../../shared/schemas/asset.ts';
import { decodeFederatedCursor, encodeFederatedCursor, federatedSearch } from './federated-search.ts';
import type { FederationServices } from './services.ts';

const asset = (authority: string, id: string): Asset => ({
  id,
  uri: `imagine://${authority}/images/${id}`,
  filename: `${id}.jpg`,
  mediaType: 'image/jpeg',
  created: '2026-01-01T00:00:00.000Z',
  updated: '2026-01-01T00:00:00.000Z',
  currentVersion: 'v1',
  metadata: {},
  versions: [{ id: 'v1', number: 1, created: '2026-01-01T00:00:00.000Z', sha256: 'a'.repeat(64), size: 1, mediaType: 'image/jpeg' }],
  rights: { doNotDistribute: false, expired: false },
  collections: [],
  thumbnail: null,
  iiif: null,
});

/** A federation whose peers answer as `answers` says (delay, then a body or a status). */
function fakeFederation(answers: Record<string, { delayMs?: number; status?: number; body: unknown }>): FederationServices {
  const peers = Object.keys(answers).map((origin) => ({
    origin,
    domain: origin.slice(7),
    direction: 'outgoing' as const,
    state: 'accepted' as const,
    scopes: ['search' as const],
    requested: '',
  }));
  return {
    peers: { list: async () => peers },
    resolver: { resolve: async (origin: string) => ({ endpoints: { api: `${origin}/api/v1` } }) },
    async signedFetch(_issuer: string, url: string) {
      const answer = answers[new URL(url).origin]!;
      await new Promise((r) => setTimeout(r, answer.delayMs ?? 0));
      return new Response(typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body), {
        status: answer.status ?? 200,
        headers: { 'content-type': 'application/json' },
      });
    },
  } as unknown as FederationServices;
}

test('ok, slow, garbage and refusing peers: each reported, the search answers within the deadline', async () => {
  const federation = fakeFederation({
    'http://ok.test': { body: { items: [asset('ok.test', 'o1'), asset('ok.test', 'o2')], next: 'c2' } },
    'http://slow.test': { delayMs: 1_000, body: { items: [asset('slow.test', 's1')], next: null } },
    'http://garbage.test': { body: '<html>not json</html>' },
    'http://liar.test': { body: { items: [asset('elsewhere.test', 'x1'), asset('liar.test', 'l1')], next: null } },
    'http://refuse.test': { status: 403, body: { type: 'x', title: 'x', status: 403, code: 'ERR_PEER_UNKNOWN', detail: 'no' } },
  });
  const started = performance.now();
  const page = await federatedSearch({
    federation,
    issuer: 'http://home.test',
    query: { q: 'harbour' },
    cursor: {},
    local: { items: [asset('home.test', 'h1')], next: null },
    deadlineMs: 150,
  });
  assert.ok(performance.now() - started < 900, 'the slow peer did not hold the search');
  const by = Object.fromEntries(page.sources.map((s) => [s.origin, s]));
  assert.equal(by['http://ok.test']!.state, 'ok');
  assert.equal(by['http://slow.test']!.state, 'slow');
  assert.equal(by['http://garbage.test']!.state, 'failed');
  assert.equal(by['http://refuse.test']!.error?.code, 'ERR_PEER_UNKNOWN');
  assert.equal(by['http://liar.test']!.count, 1, 'results claiming another authority are dropped');
  // Rank by rank: the first of each source, then the second.
  assert.deepEqual(page.items.map((a) => a.id), ['h1', 'o1', 'l1', 'o2']);
  const next = decodeFederatedCursor(page.next!);
  assert.equal(next.local, null);
  assert.equal(next.peers!['http://ok.test'], 'c2');
  assert.equal(next.peers!['http://liar.test'], null);
  assert.equal('http://slow.test' in next.peers!, false, 'a peer that missed its first page is asked from the start next time');
});

test('cursors: exhausted everywhere is null; a forged cursor is refused', () => {
  assert.equal(encodeFederatedCursor({ local: null, peers: { 'http://a.test': null } }), null);
  assert.throws(() => decodeFederatedCursor('f1.not-base64-json'), /federated search cursor/);
  assert.throws(() => decodeFederatedCursor('plain-cursor'), /federated search cursor/);
  const forged = `f1.${Buffer.from(JSON.stringify({ local: 5, peers: {} })).toString('base64url')}`;
  assert.throws(() => decodeFederatedCursor(forged), /federated search cursor/);
});
