/**
 * Fork provenance: the file of a new asset made from another one (a fork, or an import from
 * another server) becomes a new document that says where it came from:
 *
 * - a new xmpMM:DocumentID and InstanceID; OriginalDocumentID kept (or, when the parent had
 *   none, the parent's DocumentID: the document the lineage started from);
 * - xmpMM:DerivedFrom = the parent (its DocumentID and InstanceID when it had them, and its
 *   imagine:// URI as stRef:filePath), and dc:source = the parent's imagine:// URI;
 * - a `derived` History event;
 * - nothing else: creator, rights, credit and every other field stay as the parent had them.
 *
 * `path` is a copy of the parent's file, changed in place.
 */
import { randomUUID } from 'node:crypto';
import { ProtocolError } from '../../shared/errors.ts';
import { parseUri } from '../../shared/uri.ts';
import { SOFTWARE } from '../software.ts';
import { assignment, exifDateTime, readGroupedTags, pickTag, runExiftool, WRITE_ARGS, type TagValue } from './exiftool.ts';
import { cleanMessage } from './write.ts';

export interface ForkOptions {
  /** imagine:// URI of the parent (with `@version` when a version was forked). */
  parentUri: string;
  softwareAgent?: string;
  now?: Date;
}

export interface ForkResult {
  documentId: string;
  instanceId: string;
  warnings: string[];
}

const text = (v: unknown) => (typeof v === 'string' && v.trim() ? v.trim() : undefined);

/** Writes fork provenance into `path` (see the module comment). */
export async function writeForkProvenance(path: string, options: ForkOptions): Promise<ForkResult> {
  parseUri(options.parentUri);
  const now = options.now ?? new Date();
  const read = await readGroupedTags(path, ['-XMP-xmpMM:DocumentID', '-XMP-xmpMM:InstanceID', '-XMP-xmpMM:OriginalDocumentID']);
  if (read.errors.length) throw new ProtocolError('ERR_UNSUPPORTED_MEDIA_TYPE', `metadata cannot be read: ${cleanMessage(read.errors[0]!)}`);
  const parent = {
    documentId: text(pickTag(read.tags, 'XMP-xmpMM:DocumentID')),
    instanceId: text(pickTag(read.tags, 'XMP-xmpMM:InstanceID')),
    originalDocumentId: text(pickTag(read.tags, 'XMP-xmpMM:OriginalDocumentID')),
  };
  const documentId = `xmp.did:${randomUUID()}`;
  const instanceId = `xmp.iid:${randomUUID()}`;
  const derivedFrom: Record<string, string> = { FilePath: options.parentUri };
  if (parent.documentId) derivedFrom.DocumentID = parent.documentId;
  if (parent.instanceId) derivedFrom.InstanceID = parent.instanceId;
  if (parent.originalDocumentId) derivedFrom.OriginalDocumentID = parent.originalDocumentId;
  const origin = parent.originalDocumentId ?? parent.documentId;
  const assignments: Array<[string, TagValue | null]> = [
    ['XMP-xmpMM:DocumentID', documentId],
    ['XMP-xmpMM:InstanceID', instanceId],
    ['XMP-xmpMM:DerivedFrom', derivedFrom],
    ['XMP-dc:Source', options.parentUri],
    [
      'XMP-xmpMM:History+',
      {
        Action: 'derived',
        Parameters: `from ${options.parentUri}`,
        InstanceID: instanceId,
        When: exifDateTime(now),
        SoftwareAgent: options.softwareAgent ?? `${SOFTWARE.name} ${SOFTWARE.version}`,
      },
    ],
  ];
  if (origin) assignments.push(['XMP-xmpMM:OriginalDocumentID', origin]);
  const out = await runExiftool([...WRITE_ARGS, '-m', ...assignments.map(([t, v]) => assignment(t, v)), path]);
  if (out.errors.length || /weren't updated/.test(out.stdout)) {
    throw new ProtocolError('ERR_UNSUPPORTED_MEDIA_TYPE', `metadata cannot be written into this file: ${cleanMessage(out.errors[0] ?? out.stdout)}`);
  }
  return { documentId, instanceId, warnings: out.warnings.map(cleanMessage) };
}
