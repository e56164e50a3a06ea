/**
 * Guests across three real servers on loopback (each `imagine serve` in its own process):
 * A, where the guest signs in, asked B and C to trust it; A, B and C each share a collection
 * with ana@guest.example. The invitation goes through the CLI (link printed, mailed through a fake
 * SMTP server); the link signs in once; the guest's combined view holds the shares of all three
 * servers, marked with their origins and without location; one archive carries originals of
 * all three (privacy-filtered copies, checked byte for byte), with the failures listed inside.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { unzipSync } from 'fflate';
import { killChildren, lastLine, readCatalog, runCli, sha256, startServer, type Server } from './helpers/integration.ts';
import { exiftool } from './helpers/metadata.ts';
import { readAllTags } from '../companion/metadata/tag-diff.ts';
import { endExiftool } from '../companion/metadata/exiftool.ts';
import { startFakeSmtp, type FakeSmtp } from '../companion/guests/fake-smtp.ts';
import { openGuestStore } from '../companion/guests/store.ts';

type Name = 'a' | 'b' | 'c';
const NAMES: Name[] = ['a', 'b', 'c'];
const GUEST = 'ana@guest.example';

let root: string;
let smtp: FakeSmtp;
let expiredLink = '';
const data: Record<Name, string> = { a: '', b: '', c: '' };
const servers: Partial<Record<Name, Server>> = {};
const admin: Record<Name, string> = { a: '', b: '', c: '' };
let link = '';
let cookie = '';

async function picture(path: string, rgb: [number, number, number], title: string): Promise<void> {
  await sharp({ create: { width: 64, height: 48, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } }).jpeg().toFile(path);
  await exiftool('-overwrite_original', `-XMP-dc:Title=${title}`, '-XMP-photoshop:City=Lisbon', '-XMP-photoshop:Country=Portugal',
    '-GPSLatitude=38.72', '-GPSLatitudeRef=N', '-GPSLongitude=9.14', '-GPSLongitudeRef=W', path);
}

async function cli(args: string[]): Promise<string> {
  const result = await runCli(args, { timeoutMs: 120_000 });
  assert.equal(result.code, 0, `imagine ${args.join(' ')}\n${result.stderr}`);
  return lastLine(result.stdout);
}

async function adminToken(dataDir: string): Promise<string> {
  await cli(['users', 'add', 'boss', '--admin', '--data', dataDir]);
  return (JSON.parse(await cli(['tokens', 'create', '--user', 'boss', '--data', dataDir, '--json'])) as { token: string }).token;
}

const authority = (name: Name) => new URL(servers[name]!.url).host;

async function api<T = any>(name: Name, path: string, init: RequestInit = {}): Promise<{ status: number; body: T }> {
  const response = await fetch(`${servers[name]!.api}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${admin[name]}`, ...(init.body ? { 'content-type': 'application/json' } : {}) },
  });
  return { status: response.status, body: (await response.json().catch(() => undefined)) as T };
}

async function collectionId(name: Name, collection: string): Promise<string> {
  const { body } = await api<{ items: { id: string; name: string }[] }>(name, '/collections');
  return body.items.find((c) => c.name === collection)!.id;
}

const guestFetch = (path: string, init: RequestInit & { cookie?: string } = {}) =>
  fetch(`${servers.a!.url}${path}`, {
    redirect: 'manual',
    ...init,
    headers: { ...(init.cookie !== '' ? { cookie: init.cookie ?? cookie } : {}), ...(init.headers as Record<string, string>) },
  });

interface GuestItem {
  uri: string;
  server: string;
  local: boolean;
  filename: string;
  metadata: Record<string, unknown>;
  thumbnail: string | null;
}

async function combined(q?: string): Promise<{ items: GuestItem[]; sources: { origin: string; state: string }[] }> {
  const response = await guestFetch(`/guest/api/assets${q ? `?q=${encodeURIComponent(q)}` : ''}`);
  assert.equal(response.status, 200, await response.clone().text());
  return (await response.json()) as { items: GuestItem[]; sources: { origin: string; state: string }[] };
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'imagine-it-guests-'));
  smtp = await startFakeSmtp();
  const colours: Record<Name, [number, number, number]> = { a: [200, 30, 30], b: [30, 200, 30], c: [30, 30, 200] };
  for (const name of NAMES) {
    data[name] = join(root, name);
    const shared = join(root, `shared-${name}`);
    await mkdir(join(shared, 'second'), { recursive: true });
    await picture(join(shared, `harbour-${name}.jpg`), colours[name], `Harbour ${name}`);
    await picture(join(shared, `boats-${name}.jpg`), colours[name].map((v) => 255 - v) as [number, number, number], `Boats ${name}`);
    if (name === 'a') {
      // Two pictures with one file name on one server: the archive must keep both.
      await picture(join(shared, 'second', `harbour-${name}.jpg`), [10, 10, 10], 'Harbour a again');
    }
    await cli(['ingest', '--data', data[name], '--collection', 'For Ana', '--json', shared]);
    const secret = join(root, `secret-${name}`);
    await mkdir(secret, { recursive: true });
    await picture(join(secret, `secret-${name}.jpg`), [120, 120, 0].map((v, i) => v + i + name.charCodeAt(0)) as [number, number, number], `Secret ${name}`);
    await cli(['ingest', '--data', data[name], '--collection', 'Private', '--json', secret]);
    admin[name] = await adminToken(data[name]);
  }
  // A mails invitations through the fake SMTP server.
  await writeFile(join(data.a, 'config.json'), JSON.stringify({ smtpUrl: smtp.url, smtpFrom: 'studio@a.example' }));
  // A sign-in link that expired a day ago (written before A starts: only the lock holder writes).
  const past = await openGuestStore(data.a, () => Date.now() - 8 * 86_400_000);
  const expired = await past.createInvite({ identity: GUEST, collections: [], ttlSeconds: 7 * 86_400 });
  await past.flush();
  expiredLink = expired.token;
  [servers.a, servers.b, servers.c] = await Promise.all(NAMES.map((name) => startServer(data[name])));
  for (const peer of ['b', 'c'] as const) {
    await cli(['peers', 'request', servers[peer]!.url, '--data', data.a]);
    await cli(['peers', 'approve', authority('a'), '--data', data[peer]]);
  }
}, { timeout: 600_000 });

after(async () => {
  killChildren();
  await endExiftool();
  await smtp?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

describe('guests of three servers', { timeout: 600_000 }, () => {
  test('invite: refused without a token while A runs; with one the link is printed and mailed', async () => {
    const refused = await runCli(['guests', 'invite', GUEST, '--collection', 'For Ana', '--data', data.a]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /--token/);

    const invited = await runCli(['guests', 'invite', 'Ana@Guest.Example', '--collection', 'For Ana', '--token', admin.a, '--data', data.a], { timeoutMs: 60_000 });
    assert.equal(invited.code, 0, invited.stderr);
    link = lastLine(invited.stdout);
    assert.match(link, new RegExp(`^${servers.a!.url}/guest/login\\?token=igl_[A-Za-z0-9_-]{43}$`));
    assert.match(invited.stdout, /mailed to ana@guest\.example/);
    const mail = smtp.received.at(-1)!;
    assert.deepEqual(mail.to, [GUEST]);
    assert.equal(mail.from, 'studio@a.example');
    assert.ok(mail.text.includes(link), 'the mail carries the link');

    // B and C share a collection with the same address (as they would with any remote user).
    for (const name of ['b', 'c'] as const) {
      const id = await collectionId(name, 'For Ana');
      const shared = await api(name, `/collections/${id}/shares/${encodeURIComponent(GUEST)}`, { method: 'PUT' });
      assert.equal(shared.status, 200, JSON.stringify(shared.body));
    }
  });

  test('invite: addresses that cannot be guests are refused with their code', async () => {
    const id = await collectionId('a', 'For Ana');
    for (const email of ['not an address', 'ana+tag@guest.example', `boss@${authority('a')}`]) {
      const answer = await api<{ code: string }>('a', '/guests', { method: 'POST', body: JSON.stringify({ email, collections: [id] }) });
      assert.equal(answer.status, 400, email);
      assert.equal(answer.body.code, 'ERR_GUEST_EMAIL_INVALID', email);
    }
    const anonymous = await fetch(`${servers.a!.api}/guests`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: GUEST, collections: [id] }) });
    assert.equal(anonymous.status, 401);
  });

  test('sign-in: opening the link uses nothing; the button signs in once; forged and expired links are refused', async () => {
    const page = await guestFetch(new URL(link).pathname + new URL(link).search, { cookie: '', headers: { accept: 'text/html' } });
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'self'/);
    assert.equal(page.headers.get('referrer-policy'), 'no-referrer');
    assert.match(await page.text(), /ana@guest\.example/);

    const token = new URL(link).searchParams.get('token')!;
    const signIn = (value: string) =>
      guestFetch('/guest/login', { method: 'POST', cookie: '', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token: value }).toString() });
    const first = await signIn(token);
    assert.equal(first.status, 303, await first.clone().text());
    assert.equal(first.headers.get('location'), '/guest/');
    const setCookie = first.headers.get('set-cookie') ?? '';
    assert.match(setCookie, /^imagine_guest=igs_[A-Za-z0-9_-]{43}; Path=\/guest; HttpOnly; SameSite=Strict; Max-Age=\d+/);
    cookie = setCookie.split(';')[0]!;

    const again = await signIn(token);
    assert.equal(again.status, 410);
    assert.equal(((await again.json()) as { code: string }).code, 'ERR_GUEST_LINK_EXPIRED', 'a link works once');
    const forged = await signIn(`igl_${'A'.repeat(43)}`);
    assert.equal(forged.status, 401);
    assert.equal(((await forged.json()) as { code: string }).code, 'ERR_GUEST_LINK_INVALID');
    const expired = await signIn(expiredLink);
    assert.equal(expired.status, 410);
    assert.match(((await expired.json()) as { detail: string }).detail, /expired/);
    const expiredPage = await guestFetch(`/guest/login?token=${expiredLink}`, { cookie: '', headers: { accept: 'text/html' } });
    assert.equal(expiredPage.status, 410);
    assert.match(await expiredPage.text(), /ERR_GUEST_LINK_EXPIRED/);
  });

  test('no session, no access: 401 on the API, a page saying so on /guest/', async () => {
    for (const value of ['', 'imagine_guest=igs_forged', `imagine_guest=igs_${'A'.repeat(43)}`]) {
      const answer = await guestFetch('/guest/api/assets', { cookie: value });
      assert.equal(answer.status, 401, value);
      assert.equal(((await answer.json()) as { code: string }).code, 'ERR_GUEST_SESSION_REQUIRED');
    }
    const page = await guestFetch('/guest/', { cookie: '' });
    assert.equal(page.status, 401);
    // The session cookie means nothing on the protocol API.
    const onApi = await fetch(`${servers.a!.api}/assets`, { headers: { cookie } });
    assert.equal(((await onApi.json()) as { items: unknown[] }).items.length, 0);
    const app = await guestFetch('/guest/');
    assert.equal(app.status, 200);
    assert.match(await app.text(), /<script src="\/guest\/app\.js"><\/script>/);
  });

  test('combined view: the shares of A, B and C, each marked with its server, without location', async () => {
    const view = await combined();
    assert.deepEqual(view.sources.map((s) => s.state), ['ok', 'ok', 'ok'], JSON.stringify(view.sources));
    const byServer = (name: Name) => view.items.filter((i) => i.server === authority(name)).map((i) => i.filename).sort();
    assert.deepEqual(byServer('a'), ['boats-a.jpg', 'harbour-a.jpg', 'harbour-a.jpg']);
    assert.deepEqual(byServer('b'), ['boats-b.jpg', 'harbour-b.jpg']);
    assert.deepEqual(byServer('c'), ['boats-c.jpg', 'harbour-c.jpg']);
    assert.equal(view.items.length, 7, 'nothing private that was not shared');
    for (const item of view.items) {
      assert.ok(item.uri.startsWith(`imagine://${item.server}/images/`), item.uri);
      assert.equal(item.local, item.server === authority('a'));
      assert.ok(item.metadata.title, 'metadata is there');
      for (const field of ['city', 'country', 'countryCode', 'state', 'sublocation']) {
        assert.equal(item.metadata[field], undefined, `${field} of ${item.uri}`);
      }
    }
    // The owner sees where it was taken: the filter is the guest's, not the data's.
    const owned = await api<{ items: { metadata: Record<string, unknown> }[] }>('b', '/assets?q=harbour');
    assert.equal(owned.body.items[0]!.metadata.city, 'Lisbon');
    // Search narrows every source.
    const boats = await combined('boats');
    assert.deepEqual(boats.items.map((i) => i.filename).sort(), ['boats-a.jpg', 'boats-b.jpg', 'boats-c.jpg']);

    // Thumbnails of remote items are relayed by A (the browser cannot sign).
    for (const item of [view.items.find((i) => i.server === authority('b'))!, view.items.find((i) => i.local)!]) {
      const thumb = await guestFetch(item.thumbnail!);
      assert.equal(thumb.status, 200);
      assert.equal(thumb.headers.get('content-type'), 'image/jpeg');
      assert.ok((await thumb.arrayBuffer()).byteLength > 100);
    }
    const stranger = await guestFetch(`/guest/api/thumbnail?uri=${encodeURIComponent('imagine://127.0.0.1:9/images/x')}`);
    assert.equal(((await stranger.json()) as { code: string }).code, 'ERR_PEER_UNKNOWN');
  });

  test('batch download: one zip with originals of all three servers, privacy-filtered, failures listed inside', async () => {
    const view = await combined();
    const secretB = (await api<{ items: { uri: string }[] }>('b', '/assets?q=secret')).body.items[0]!.uri;
    const secretA = (await api<{ items: { uri: string }[] }>('a', '/assets?q=secret')).body.items[0]!.uri;
    const notPeer = 'imagine://127.0.0.1:9/images/abc';
    const uris = [...view.items.map((i) => i.uri), secretB, secretA, notPeer];
    const response = await guestFetch('/guest/api/archive', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ uris }) });
    assert.equal(response.status, 200, await response.clone().text());
    assert.equal(response.headers.get('content-type'), 'application/zip');
    assert.match(response.headers.get('content-disposition') ?? '', /^attachment; filename="shared-pictures-/);
    const entries = unzipSync(new Uint8Array(await response.arrayBuffer()));
    const names = Object.keys(entries).sort();
    const folder = (name: Name) => authority(name).replace(':', '_');
    assert.deepEqual(
      names,
      [
        'MANIFEST.txt',
        `${folder('a')}/boats-a.jpg`, `${folder('a')}/harbour-a (2).jpg`, `${folder('a')}/harbour-a.jpg`,
        `${folder('b')}/boats-b.jpg`, `${folder('b')}/harbour-b.jpg`,
        `${folder('c')}/boats-c.jpg`, `${folder('c')}/harbour-c.jpg`,
      ].sort(),
    );
    const manifest = new TextDecoder().decode(entries['MANIFEST.txt']);
    assert.match(manifest, /7 file\(s\) written, 3 failed/);
    const failed = manifest.split('\r\n').filter((l) => l.startsWith('FAILED')).map((l) => l.split('\t'));
    assert.deepEqual(failed.map((f) => f[1]).sort(), [notPeer, secretA, secretB].sort());
    assert.equal(failed.find((f) => f[1] === notPeer)![2], 'ERR_PEER_UNKNOWN');
    assert.equal(failed.find((f) => f[1] === secretA)![2], 'ERR_ASSET_NOT_FOUND');
    assert.match(failed.find((f) => f[1] === secretB)![2]!, /^ERR_(ASSET_NOT_FOUND|UNAUTHORIZED|FORBIDDEN)$/);

    // Every entry is its server's privacy-filtered copy of the original, byte for byte.
    for (const name of NAMES) {
      const copies = JSON.parse(await readFile(join(data[name], 'private-copies.json'), 'utf8')) as Record<string, { sha256: string } | 'same'>;
      const catalog = await readCatalog(data[name]);
      const expected = catalog.assets
        .filter((asset) => !asset.filename.startsWith('secret'))
        .map((asset) => {
          const original = asset.versions.at(-1)!.sha256;
          const copy = copies[`${original}:none`];
          assert.ok(copy && copy !== 'same', `${name}: a filtered copy was made of ${asset.filename}`);
          return copy.sha256;
        })
        .sort();
      const got = names.filter((n) => n.startsWith(`${folder(name)}/`)).map((n) => sha256(Buffer.from(entries[n]!))).sort();
      assert.deepEqual(got, expected, `${name}: archive entries are the private copies`);
      const listed = manifest.split('\r\n').filter((l) => l.startsWith(`OK\t${folder(name)}/`)).map((l) => l.split('\t')[2]!.replace('sha256:', '')).sort();
      assert.deepEqual(listed, expected, `${name}: MANIFEST lists each entry's sha256`);
      const sample = join(root, `entry-${name}.jpg`);
      await writeFile(sample, entries[names.find((n) => n.startsWith(`${folder(name)}/`))!]!);
      const tags = Object.keys((await readAllTags(sample)).tags);
      assert.deepEqual(tags.filter((k) => /GPS|City|Country/i.test(k)), [], `${name}: no location in the file`);
    }
  });

  test('batch download: a form post works too; too many items, no session or another origin are refused', async () => {
    const view = await combined('boats');
    const form = new URLSearchParams(view.items.map((i) => ['uri', i.uri]));
    const posted = await guestFetch('/guest/api/archive', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString() });
    assert.equal(posted.status, 200);
    assert.equal(Object.keys(unzipSync(new Uint8Array(await posted.arrayBuffer()))).length, 4);

    const tooMany = Array.from({ length: 201 }, (_, i) => `imagine://${authority('a')}/images/x${i}`);
    const big = await guestFetch('/guest/api/archive', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ uris: tooMany }) });
    assert.equal(big.status, 400);
    assert.equal(((await big.json()) as { code: string }).code, 'ERR_VALIDATION');
    const empty = await guestFetch('/guest/api/archive', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ uris: [] }) });
    assert.equal(empty.status, 400);
    const anonymous = await guestFetch('/guest/api/archive', { method: 'POST', cookie: '', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ uris: [view.items[0]!.uri] }) });
    assert.equal(anonymous.status, 401);
    const foreign = await guestFetch('/guest/api/archive', { method: 'POST', headers: { 'content-type': 'application/json', origin: 'http://evil.example' }, body: JSON.stringify({ uris: [view.items[0]!.uri] }) });
    assert.equal(foreign.status, 403);
  });

  test('ending a share takes effect at once; signing out ends the session', async () => {
    const id = await collectionId('b', 'For Ana');
    const ended = await api('b', `/collections/${id}/shares/${encodeURIComponent(GUEST)}`, { method: 'DELETE' });
    assert.equal(ended.status, 200);
    const view = await combined();
    assert.equal(view.items.filter((i) => i.server === authority('b')).length, 0);
    assert.equal(view.items.length, 5);

    const out = await guestFetch('/guest/logout', { method: 'POST' });
    assert.equal(out.status, 303);
    assert.match(out.headers.get('set-cookie') ?? '', /Max-Age=0/);
    const after = await guestFetch('/guest/api/assets');
    assert.equal(after.status, 401);
  });
});
