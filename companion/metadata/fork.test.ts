import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isProtocolError } from '../../shared/errors.ts';
import { exiftool, scratch } from '../../test/helpers/metadata.ts';
import { SOFTWARE } from '../software.ts';
import { endExiftool } from './exiftool.ts';
import { writeForkProvenance } from './fork.ts';
import { readMetadata } from './read.ts';
import { diffKeys, diffTags, readAllTags } from './tag-diff.ts';

const PARENT = 'imagine://photos.example.org/images/k9x2@v4';

let tmp: Awaited<ReturnType<typeof scratch>>;
before(async () => {
  tmp = await scratch();
});
after(async () => {
  await endExiftool();
  await tmp.remove();
});

describe('fork provenance', () => {
  test('a new document derived from the parent; creator, rights and credit untouched', async () => {
    const path = await tmp.copy('XMP.jpg');
    await exiftool('-overwrite_original', '-XMP-xmpMM:InstanceID=xmp.iid:parent-7', path); // DocumentID is adobe:docid:photoshop:...
    const before = await readAllTags(path);
    const metadataBefore = (await readMetadata(path)).metadata;
    const result = await writeForkProvenance(path, { parentUri: PARENT, now: new Date('2024-06-01T09:00:00Z') });
    const after = (await readAllTags(path)).tags;
    assert.match(result.documentId, /^xmp\.did:[0-9a-f-]{36}$/);
    assert.equal(after['XMP-xmpMM:DocumentID'], result.documentId);
    assert.notEqual(after['XMP-xmpMM:DocumentID'], before.tags['XMP-xmpMM:DocumentID']);
    assert.equal(after['XMP-xmpMM:InstanceID'], result.instanceId);
    assert.equal(after['XMP-xmpMM:OriginalDocumentID'], before.tags['XMP-xmpMM:DocumentID'], 'the lineage starts at the parent');
    assert.deepEqual(after['XMP-xmpMM:DerivedFrom'], {
      DocumentID: before.tags['XMP-xmpMM:DocumentID'],
      InstanceID: 'xmp.iid:parent-7',
      FilePath: PARENT,
    });
    assert.equal(after['XMP-dc:Source'], PARENT);
    const history = after['XMP-xmpMM:History'] as Array<Record<string, string>>;
    assert.deepEqual(history.at(-1), {
      Action: 'derived',
      Parameters: `from ${PARENT}`,
      InstanceID: result.instanceId,
      When: '2024:06:01 09:00:00+00:00',
      SoftwareAgent: `${SOFTWARE.name} ${SOFTWARE.version}`,
    });
    const changed = diffKeys(diffTags(before.tags, after));
    assert.deepEqual(changed.filter((k) => !k.startsWith('XMP-xmpMM:') && k !== 'XMP-dc:Source' && k !== 'XMP-x:XMPToolkit'), []);
    assert.deepEqual((await readMetadata(path)).metadata, metadataBefore, 'every field as the parent had it');
  });

  test('the original document id is kept along a lineage', async () => {
    const path = await tmp.copy('IPTC.jpg');
    await exiftool('-overwrite_original', '-XMP-xmpMM:DocumentID=xmp.did:child', '-XMP-xmpMM:OriginalDocumentID=xmp.did:root', path);
    await writeForkProvenance(path, { parentUri: PARENT });
    const t = (await readAllTags(path)).tags;
    assert.equal(t['XMP-xmpMM:OriginalDocumentID'], 'xmp.did:root');
    assert.deepEqual(t['XMP-xmpMM:DerivedFrom'], { DocumentID: 'xmp.did:child', OriginalDocumentID: 'xmp.did:root', FilePath: PARENT });
  });

  test('a parent without ids, and a bad parent URI', async () => {
    const path = await tmp.copy('Canon.jpg');
    await writeForkProvenance(path, { parentUri: PARENT });
    const t = (await readAllTags(path)).tags;
    assert.deepEqual(t['XMP-xmpMM:DerivedFrom'], { FilePath: PARENT });
    assert.equal(t['XMP-xmpMM:OriginalDocumentID'], undefined);
    await assert.rejects(writeForkProvenance(path, { parentUri: 'https://example.org/x' }), (e) => isProtocolError(e, 'ERR_URI_INVALID'));
  });
});
