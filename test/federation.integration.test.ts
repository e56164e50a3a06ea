/**
 * Federation between three real servers on loopback (each `imagine serve` in its own process):
 * the trust handshake through `imagine peers`, federated search with per-peer status (one peer
 * stopped, one revoked), and a collection shared with a user of another server.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { killChildren, lastLine, runCli, startServer, stopChild, type Server } from './helpers/integration.ts';
import { exiftool } from './helpers/metadata.ts';
import { diffKeys, diffTags, readAllTags } from '../companion/metadata/tag-diff.ts';
import { endExiftool } from '../companion/metadata/exiftool.ts';
import { writeFile } from 'node:fs/promises';

let root: string;
const data: Record<'a' | 'b' | 'c', string> = { a: '', b: '', c: '' };
const servers: Partial<Record<'a' | 'b' | 'c', Server>> = {};
let aliceToken = '';
let bAdminToken = '';
let aAdminToken = '';

async function picture(path: string, rgb: [number, number, number]): Promise<void> {
  await sharp({ create: { width: 64, height: 48, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } })
    .jpeg()
    .toFile(path);
}

async function cli(args: string[]): Promise<string> {
  const result = await runCli(args, { timeoutMs: 120_000 });
  assert.equal(result.code, 0, `imagine ${args.join(' ')}\n${result.stderr}`);
  return lastLine(result.stdout);
}

async function token(dataDir: string, user: string, admin: boolean): Promise<string> {
  await cli(['users', 'add', user, ...(admin ? ['--admin'] : []), '--data', dataDir]);
  return (JSON.parse(await cli(['tokens', 'create', '--user', user, '--data', dataDir, '--json'])) as { token: string }).token;
}

interface FederatedAnswer {
  items: { uri: string; filename: string }[];
  next: string | null;
  sources: { origin: string; state: string; count: number; error?: { code: string } }[];
}

async function federated(q: string, bearer?: string): Promise<FederatedAnswer> {
  const response = await fetch(`${servers.a!.api}/assets?scope=federated&q=${encodeURIComponent(q)}`, {
    headers: bearer ? { authorization: `Bearer ${bearer}` } : {},
  });
  assert.equal(response.status, 200, await response.clone().text());
  return (await response.json()) as FederatedAnswer;
}

function sourceOf(answer: FederatedAnswer, server: Server | 'local') {
  const origin = server === 'local' ? 'local' : server.url;
  return answer.sources.find((s) => s.origin === origin);
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'imagine-it-federation-'));
  for (const [name, rgb] of [['a', [200, 30, 30]], ['b', [30, 200, 30]], ['c', [30, 30, 200]]] as const) {
    data[name] = join(root, name);
    const pictures = join(root, `pictures-${name}`);
    await mkdir(pictures, { recursive: true });
    await picture(join(pictures, `harbour-${name}.jpg`), [...rgb]);
    if (name === 'b') {
      // Rich metadata that an import must carry over untouched, and one picture nobody may copy.
      await exiftool('-overwrite_original', '-XMP-dc:Creator=Bea Harbour', '-XMP-dc:Title=Harbour at dawn',
        '-XMP-dc:Rights=(c) Bea', '-XMP-photoshop:Credit=Studio B', '-IPTC:Keywords=harbour', '-XMP-xmpMM:DocumentID=xmp.did:b-original',
        join(pictures, 'harbour-b.jpg'));
      await picture(join(pictures, 'harbour-nodist.jpg'), [90, 90, 90]);
      await exiftool('-overwrite_original', '-XMP-xmpRights:UsageTerms=Do not distribute', join(pictures, 'harbour-nodist.jpg'));
    }
    await cli(['ingest', '--data', data[name], '--collection', 'Open', '--public', '--json', pictures]);
  }
  // On B, a private collection to be shared with alice@<A>.
  const secret = join(root, 'secret');
  await mkdir(secret, { recursive: true });
  await picture(join(secret, 'harbour-secret.jpg'), [120, 120, 0]);
  await cli(['ingest', '--data', data.b, '--collection', 'Private', '--json', secret]);
  aliceToken = await token(data.a, 'alice', false);
  bAdminToken = await token(data.b, 'boss', true);
  aAdminToken = await token(data.a, 'root', true);
  const started = await Promise.all((['a', 'b', 'c'] as const).map((name) => startServer(data[name])));
  [servers.a, servers.b, servers.c] = started;
}, { timeout: 400_000 });

after(async () => {
  killChildren();
  await endExiftool();
  if (root) await rm(root, { recursive: true, force: true });
});

describe('federation between three servers', { timeout: 600_000 }, () => {
  test('handshake: A asks B and C; pending until approved; JWKS published', async () => {
    const jwks = (await (await fetch(`${servers.a!.url}/.well-known/imagine/jwks.json`)).json()) as { keys: { kty: string; crv: string; d?: string }[] };
    assert.equal(jwks.keys.length, 1);
    assert.equal(jwks.keys[0]!.crv, 'Ed25519');
    assert.equal(jwks.keys[0]!.d, undefined, 'no private part published');

    for (const peer of [servers.b!, servers.c!]) {
      const asked = JSON.parse(await cli(['peers', 'request', peer.url, '--data', data.a, '--json'])) as { state: string };
      assert.equal(asked.state, 'requested');
    }
    const listed = JSON.parse(await cli(['peers', 'list', '--data', data.b, '--json'])) as { items: { origin: string; state: string; direction: string }[] };
    assert.deepEqual(
      listed.items.map((p) => [p.origin, p.direction, p.state]),
      [[servers.a!.url, 'incoming', 'pending']],
    );
    const before = await federated('harbour');
    assert.equal(sourceOf(before, servers.b!)?.state, 'failed');
    assert.equal(sourceOf(before, servers.b!)?.error?.code, 'ERR_PEER_UNKNOWN', 'pending is not trusted');
    assert.equal(before.items.length, 1, 'only A answered');

    const domainOfA = new URL(servers.a!.url).host;
    await cli(['peers', 'approve', domainOfA, '--data', data.b]);
    await cli(['peers', 'approve', domainOfA, '--data', data.c]);
  });

  test('federated search: results of all three, each with its own imagine:// authority and a status per source', async () => {
    const answer = await federated('harbour');
    const authorities = answer.items.map((i) => new URL(i.uri.replace('imagine://', 'http://')).host).sort();
    assert.deepEqual([...new Set(authorities)], [servers.a!, servers.b!, servers.c!].map((s) => new URL(s.url).host).sort());
    assert.equal(answer.items.length, 4, 'A, C, and B\'s two public pictures');
    assert.deepEqual(answer.sources.map((s) => s.state), ['ok', 'ok', 'ok']);
    assert.ok(!answer.items.some((i) => i.filename === 'harbour-secret.jpg'), 'a private collection stays private');
    // With nothing else in the query, the peers are asked at their bare search URL (signed as sent).
    const everything = (await (await fetch(`${servers.a!.api}/assets?scope=federated`)).json()) as FederatedAnswer;
    assert.deepEqual(everything.sources.map((s) => s.state), ['ok', 'ok', 'ok'], JSON.stringify(everything.sources));
    // The rank-by-rank merge keeps each source's own order and a plain search stays local.
    const local = (await (await fetch(`${servers.a!.api}/assets?q=harbour`)).json()) as { items: unknown[]; sources?: unknown };
    assert.equal(local.items.length, 1);
    assert.equal(local.sources, undefined);
  });

  test('a collection shared with alice@A: her federated search sees it, an anonymous one does not', async () => {
    const collections = (await (await fetch(`${servers.b!.api}/collections`, { headers: { authorization: `Bearer ${bAdminToken}` } })).json()) as {
      items: { id: string; name: string }[];
    };
    const privateId = collections.items.find((c) => c.name === 'Private')!.id;
    const alice = `alice@${new URL(servers.a!.url).host}`;
    const shared = await fetch(`${servers.b!.api}/collections/${privateId}/shares/${encodeURIComponent(alice)}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${bAdminToken}` },
    });
    assert.equal(shared.status, 200, await shared.clone().text());
    const asAlice = await federated('harbour', aliceToken);
    assert.ok(asAlice.items.some((i) => i.filename === 'harbour-secret.jpg'), JSON.stringify(asAlice.items));
    const anonymous = await federated('harbour');
    assert.ok(!anonymous.items.some((i) => i.filename === 'harbour-secret.jpg'));
  });

  test('hostile: unsigned, forged and replayed peer requests are refused with their codes', async () => {
    const unsigned = await fetch(`${servers.b!.api}/assets?q=harbour`, { headers: { authorization: 'Peer a.b.c' } });
    assert.equal(unsigned.status, 401);
    assert.equal(((await unsigned.json()) as { code: string }).code, 'ERR_PEER_TOKEN_INVALID');
    const trust = await fetch(`${servers.b!.api}/federation/requests`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
    assert.equal(trust.status, 401);
    // Peers only read.
    const { openFederation } = await import('../companion/federation/services.ts');
    const federationOfA = await openFederation(data.a);
    const write = await federationOfA.signedFetch(servers.a!.url, `${servers.b!.api}/collections`, {
      method: 'POST',
      body: JSON.stringify({ name: 'x' }),
    });
    assert.equal(write.status, 403);
    // A token used twice.
    const { signPeerRequest } = await import('../companion/federation/signed-request.ts');
    const url = `${servers.b!.api}/assets?q=harbour`;
    const jwt = await signPeerRequest({ keys: federationOfA.keys, issuer: servers.a!.url, audience: servers.b!.url, method: 'GET', url });
    const first = await fetch(url, { headers: { authorization: `Peer ${jwt}` } });
    assert.equal(first.status, 200);
    const second = await fetch(url, { headers: { authorization: `Peer ${jwt}` } });
    assert.equal(second.status, 401);
    assert.equal(((await second.json()) as { code: string }).code, 'ERR_PEER_TOKEN_REPLAYED');
  });

  test('import (fork) from a peer: metadata diff shows only provenance; rights and hashes enforced', async () => {
    const found = await federated('harbour');
    const parent = found.items.find((i) => i.filename === 'harbour-b.jpg')!;
    const forbidden = found.items.find((i) => i.filename === 'harbour-nodist.jpg')!;
    assert.ok(parent && forbidden, JSON.stringify(found.items.map((i) => i.filename)));
    const importOf = (uri: string, bearer = aAdminToken) =>
      fetch(`${servers.a!.api}/imports`, {
        method: 'POST',
        headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
        body: JSON.stringify({ uri }),
      });
    const countOnA = async () =>
      ((await (await fetch(`${servers.a!.api}/assets?limit=200`, { headers: { authorization: `Bearer ${aAdminToken}` } })).json()) as { items: unknown[] }).items.length;
    const before = await countOnA();

    const refused = await importOf(forbidden.uri);
    assert.equal(refused.status, 403);
    assert.equal(((await refused.json()) as { code: string }).code, 'ERR_DISTRIBUTION_FORBIDDEN');
    const notPeer = await importOf('imagine://127.0.0.1:9/images/abc');
    assert.equal(((await notPeer.json()) as { code: string }).code, 'ERR_PEER_UNKNOWN');
    const anonymous = await fetch(`${servers.a!.api}/imports`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ uri: parent.uri }) });
    assert.equal(anonymous.status, 401);
    assert.equal(await countOnA(), before, 'nothing stored by refused imports');

    const imported = await importOf(parent.uri);
    assert.equal(imported.status, 201, await imported.clone().text());
    const asset = (await imported.json()) as { id: string; uri: string; metadata: Record<string, unknown> };
    assert.ok(asset.uri.startsWith(`imagine://${new URL(servers.a!.url).host}/images/`));
    assert.equal(await countOnA(), before + 1);

    // Compare the two originals tag by tag.
    const original = async (api: string, id: string, bearer?: string) => {
      const ticket = (await (await fetch(`${api}/assets/${id}/download`, { headers: bearer ? { authorization: `Bearer ${bearer}` } : {} })).json()) as { url: string };
      const path = join(root, `${id}-${Math.random().toString(36).slice(2)}.jpg`);
      await writeFile(path, Buffer.from(await (await fetch(ticket.url)).arrayBuffer()));
      return (await readAllTags(path)).tags;
    };
    const parentId = parent.uri.split('/').pop()!;
    const diff = diffTags(await original(servers.b!.api, parentId), await original(servers.a!.api, asset.id, aAdminToken));
    const keys = diffKeys(diff);
    assert.ok(keys.length > 0);
    const provenance = /^XMP-(xmpMM:(DocumentID|InstanceID|OriginalDocumentID|DerivedFrom|History)|dc:Source)/;
    assert.deepEqual(keys.filter((k) => !provenance.test(k)), [], `only provenance changed: ${keys.join(', ')}`);
    assert.deepEqual(diff.removed, [], 'nothing removed');
    assert.ok(keys.some((k) => k.startsWith('XMP-dc:Source')));
    assert.ok(keys.some((k) => k.startsWith('XMP-xmpMM:DerivedFrom')));

    // Importing the same version again adds nothing (same bytes: the existing asset answers).
    const again = await importOf(parent.uri);
    assert.equal(again.status, 200);
    assert.equal(((await again.json()) as { id: string }).id, asset.id);
  });

  test('a stopped peer is reported failed; the search still answers', async () => {
    await stopChild(servers.c!);
    const started = performance.now();
    const answer = await federated('harbour');
    assert.ok(performance.now() - started < 10_000);
    assert.equal(sourceOf(answer, servers.c!)?.state, 'failed');
    assert.equal(sourceOf(answer, servers.b!)?.state, 'ok');
    assert.equal(answer.items.length, 3, "A's public picture and B's two (the import is in no public collection)");
  });

  test('revocation takes effect at once', async () => {
    await cli(['peers', 'revoke', new URL(servers.a!.url).host, '--data', data.b]);
    const answer = await federated('harbour');
    assert.equal(sourceOf(answer, servers.b!)?.state, 'failed');
    assert.equal(sourceOf(answer, servers.b!)?.error?.code, 'ERR_PEER_UNKNOWN');
    assert.equal(answer.items.length, 1, 'only A');
  });
});
