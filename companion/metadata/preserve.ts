/**
 * Save-back preservation: `preserve(original, edited)` puts back into an edited file the
 * metadata the editor dropped, or changed without being asked to, on save (what Photoshop and
 * most tools do: a new InstanceID and History entry, IPTC or unknown XMP namespaces lost):
 *
 * 1. XMP, merged property by property from the two raw packets (so custom namespaces come
 *    back too): every top-level property of the original that the edited packet lacks is added
 *    back; with `intended`, a profile field the edited file changed without being listed is
 *    set back. Not restored, because they describe pixels the editor may have changed:
 *    orientation, pixel dimensions, colour space and mode, ICC profile name, Camera Raw
 *    settings (restoring them would apply the adjustments twice). `photoshop:DocumentAncestors`
 *    is dropped from the result (Photoshop lets it grow to 100,000 entries).
 * 2. IPTC IIM, EXIF, maker notes, Photoshop resources and the JPEG comment: tags the edited
 *    file lacks are copied from the original (`-wm cg`: create, never overwrite), the same
 *    pixel-bound tags excepted; IIM/EXIF of profile fields changed without being asked for
 *    are set back; the IPTC digest is left saying what the original's said (in sync, absent or
 *    stale).
 * 3. The ICC profile, if the editor dropped it and left the image data as it was.
 * 4. Document identity: xmpMM:DocumentID and OriginalDocumentID are the original's (a
 *    "Save As" gives a new DocumentID: undone), InstanceID is the edited file's if the editor
 *    made a new one, else a new one; xmpMM:DerivedFrom names the base version; a History
 *    event is appended; xmp:MetadataDate is now.
 *
 * All of it is one rewrite of the file by exiftool in the usual case (the merged XMP as a block,
 * the copied tags and the assignments in one command); a JPEG whose XMP outgrows one segment, an
 * unparsable packet and IIM values to re-apply (`intended`) take one more each.
 *
 * `edited` is changed in place (atomically, by exiftool), or with `output` only read, the result
 * going into a new file; `original` is only read.
 */
import { randomUUID } from 'node:crypto';
import { access, readFile, rm, writeFile } from 'node:fs/promises';
import { ProtocolError } from '../../shared/errors.ts';
import { SOFTWARE } from '../software.ts';
import { assignment, COPY_ARGS, exifDateTime, runExiftool, WRITE_ARGS, type TagValue } from './exiftool.ts';
import { CORE_PROFILE, type MetadataProfile } from './profile.ts';
import { readMetadata } from './read.ts';
import { readAllTags, diffTags, diffKeys, type TagMap } from './tag-diff.ts';
import { cleanMessage, planMetadataWrite, syncIptcDigest } from './write.ts';
import {
  addProperties,
  canonicalProperty,
  emptyXmpDocument,
  parseXmpDocument,
  pruneEmptyDescriptions,
  removeProperty,
  serializeXmpDocument,
  xmpProperties,
  type XmpDocument,
  type XmpProperty,
} from './xmp-merge.ts';
import { EXIFTOOL_GROUP, NS } from './xmp-namespaces.ts';
import { extractXmpPacket } from './xmp-packet.ts';

export interface PreserveOptions {
  profile?: MetadataProfile;
  /**
   * API fields the user changed on purpose: the edited values stay. When given, any other
   * profile field the edited file changed is set back to the original's value; when omitted,
   * changed values are all kept and only dropped metadata is restored.
   */
  intended?: readonly string[];
  /** The version the edited file is based on (its id and imagine:// URI): xmpMM:DerivedFrom. */
  base?: { versionId: string; uri: string };
  /** stEvt:softwareAgent of the History event. */
  softwareAgent?: string;
  now?: Date;
  /**
   * Leave `edited` as it is and write the result into this new file instead (exiftool writes it
   * straight from `edited`: no copy first). It must not exist; on failure it is removed.
   */
  output?: string;
  /**
   * With `output`, when one exiftool command makes the whole result (the usual case): called
   * as it starts writing `output`, front to back, with a promise that settles when it is done,
   * so the caller can read (send) the file as it grows.
   */
  onOutputStarted?: (written: Promise<void>) => void;
}

export interface PreserveResult {
  /** Tags of the edited file that preservation added or changed (the tag diff). */
  restored: string[];
  documentId?: string;
  instanceId: string;
  warnings: string[];
}

/** XMP properties never restored: they describe pixels, or are document bookkeeping set below. */
const XMP_NOT_RESTORED = new Set([
  `${NS.tiff}Orientation`,
  `${NS.tiff}ImageWidth`,
  `${NS.tiff}ImageLength`,
  `${NS.exif}PixelXDimension`,
  `${NS.exif}PixelYDimension`,
  `${NS.exif}ColorSpace`,
  `${NS.photoshop}ColorMode`,
  `${NS.photoshop}ICCProfile`,
  `${NS.photoshop}DocumentAncestors`,
  `${NS.xmpNote}HasExtendedXMP`,
  `${NS.xmpMM}DocumentID`,
  `${NS.xmpMM}OriginalDocumentID`,
  `${NS.xmpMM}InstanceID`,
  `${NS.xmpMM}DerivedFrom`,
  `${NS.xmp}MetadataDate`,
]);
const XMP_NAMESPACES_NOT_RESTORED = new Set<string>([NS.crs]);

/** Tags (exiftool names) never copied back into IIM/EXIF: pixel-bound or stale once pixels change. */
const TAGS_NOT_RESTORED = [
  'Orientation',
  'ExifImageWidth',
  'ExifImageHeight',
  'ImageWidth',
  'ImageHeight',
  'ColorSpace',
  'ComponentsConfiguration',
  'ThumbnailImage',
  'PreviewImage',
  'JpgFromRaw',
  'Photoshop:IPTCDigest',
  'Photoshop:PhotoshopThumbnail',
];

/** Groups whose missing tags are copied back one by one (IFD1 and SubIFDs describe image data). */
const RESTORED_GROUPS = new Set(['IPTC', 'IFD0', 'ExifIFD', 'GPS', 'InteropIFD', 'Photoshop']);

/** A JPEG APP1 segment holds at most this much XMP. */
const JPEG_XMP_LIMIT = 65_000;

function topLevelXmpKey(xmp: string): string | undefined {
  const [first] = xmp.split('/');
  const [prefix, local] = (first ?? '').split(':');
  const ns = (NS as Record<string, string>)[prefix ?? ''];
  return ns && local ? ns + local : undefined;
}

const textOf = (prop: XmpProperty | undefined): string | undefined => {
  if (!prop) return undefined;
  if (prop.attr) return prop.attr[1];
  const text = prop.element!.children.map((c) => (c.kind === 'text' ? c.text : '')).join('').trim();
  return text || undefined;
};

function parsePacket(packet: Buffer | undefined, which: 'original' | 'edited', warnings: string[]): XmpDocument | undefined {
  if (!packet) return emptyXmpDocument();
  try {
    return parseXmpDocument(packet.toString('utf8'));
  } catch (error) {
    const instead = which === 'edited' ? "it is replaced by the original's" : 'its properties are copied tag by tag';
    warnings.push(`the ${which} file's XMP packet cannot be parsed (${(error as Error).message}): ${instead}`);
    return undefined;
  }
}

async function run(args: string[]): Promise<string[]> {
  const out = await runExiftool(args);
  if (out.errors.length || /weren't updated/.test(out.stdout)) {
    throw new ProtocolError('ERR_UNSUPPORTED_MEDIA_TYPE', `metadata cannot be written into this file: ${cleanMessage(out.errors[0] ?? out.stdout)}`);
  }
  return out.warnings.map(cleanMessage);
}

const hasGroup = (tags: TagMap, group: string) => Object.keys(tags).some((k) => k.startsWith(`${group}:`));
const EXIF_GROUPS = new Set(['IFD0', 'ExifIFD', 'IFD1', 'GPS', 'InteropIFD', 'SubIFD']);

/** Whether a full tag reading has `tag` (`IPTC:Name`, or `EXIF:Name` in any EXIF directory). */
function hasTag(tags: TagMap, tag: string): boolean {
  const [group, name] = tag.split(':') as [string, string];
  return Object.keys(tags).some((key) => {
    const [g, n] = key.split(':') as [string, string];
    return n === name && (group === 'EXIF' ? EXIF_GROUPS.has(g) : g === group);
  });
}

/** Restores into `edited` what the editor dropped from `original` (see the module comment). */
export async function preserve(originalPath: string, editedPath: string, options: PreserveOptions = {}): Promise<PreserveResult> {
  const profile = options.profile ?? CORE_PROFILE;
  const now = options.now ?? new Date();
  const warnings: string[] = [];
  if (options.output && (await exists(options.output))) {
    throw new ProtocolError('ERR_CONFLICT', `${options.output} already exists: preservation writes a new file`);
  }
  const [readO, readE] = await Promise.all([readMetadata(originalPath, { profile }), readMetadata(editedPath, { profile })]);
  if (readO.unreadable || readE.unreadable) {
    throw new ProtocolError('ERR_UNSUPPORTED_MEDIA_TYPE', `metadata cannot be preserved: ${readO.unreadable ?? readE.unreadable}`);
  }
  const [{ tags: tagsO, family0: family0O, comment: commentO }, { tags: tagsE, family0: family0E, comment: commentE }, packetO, packetE] = await Promise.all([
    readAllTags(originalPath),
    readAllTags(editedPath),
    extractXmpPacket(originalPath),
    extractXmpPacket(editedPath),
  ]);
  warnings.push(...packetO.warnings, ...packetE.warnings);

  const intended = options.intended ? new Set(options.intended) : undefined;
  const reverted = intended
    ? profile.fields.filter((f) => !intended.has(f.field) && JSON.stringify(readO.metadata[f.field]) !== JSON.stringify(readE.metadata[f.field]))
    : [];

  // 4. Document identity (XMP), decided from the two packets.
  const docO = parsePacket(packetO.packet, 'original', warnings);
  // A packet nobody can read is no metadata to keep: the original's takes its place.
  const docE = parsePacket(packetE.packet, 'edited', warnings) ?? (docO && emptyXmpDocument());
  const propsO = docO ? xmpProperties(docO) : [];
  const propsE = docE ? xmpProperties(docE) : [];
  const idsO = {
    documentId: textOf(propsO.find((p) => p.key === `${NS.xmpMM}DocumentID`)),
    originalDocumentId: textOf(propsO.find((p) => p.key === `${NS.xmpMM}OriginalDocumentID`)),
    instanceId: textOf(propsO.find((p) => p.key === `${NS.xmpMM}InstanceID`)),
  };
  const editedInstance = textOf(propsE.find((p) => p.key === `${NS.xmpMM}InstanceID`));
  const instanceId = editedInstance && editedInstance !== idsO.instanceId ? editedInstance : `xmp.iid:${randomUUID()}`;
  const documentId = idsO.documentId ?? textOf(propsE.find((p) => p.key === `${NS.xmpMM}DocumentID`)) ?? `xmp.did:${randomUUID()}`;
  const identity = identityAssignments({
    documentId,
    originalDocumentId: idsO.originalDocumentId,
    instanceId,
    derivedFrom: idsO,
    base: options.base,
    now,
    softwareAgent: options.softwareAgent,
  });

  // 2. IIM, EXIF and the rest: the tags the edited file lacks, each into its own group, and
  // (set back) the original's values of fields changed without being asked for.
  const fromOriginal: string[] = [];
  const keysE = new Set(Object.keys(tagsE));
  for (const key of Object.keys(tagsO)) {
    const [group, name] = key.split(':') as [string, string];
    if (keysE.has(key) || key.includes('#') || !RESTORED_GROUPS.has(group) || TAGS_NOT_RESTORED.includes(name) || TAGS_NOT_RESTORED.includes(key)) continue;
    fromOriginal.push(`-${key}>${key}`);
  }
  const makerNotes = (family: Record<string, string>) => Object.values(family).includes('MakerNotes');
  if (makerNotes(family0O) && !makerNotes(family0E)) fromOriginal.push('-MakerNotes');
  if (commentO && !commentE) fromOriginal.push('-File:Comment');
  const assignments: Array<[string, TagValue | null]> = [];
  for (const field of reverted) {
    for (const tag of [...(field.read.iim ?? []), ...(field.read.exif ?? []).filter((t) => !t.startsWith('Composite:'))]) {
      if (hasTag(tagsO, tag)) fromOriginal.push(`-${tag}`);
      else if (hasTag(tagsE, tag)) assignments.push([tag, null]);
    }
  }
  // 3. The ICC profile.
  if (Object.keys(tagsO).some((k) => k.startsWith('ICC_Profile:')) && !Object.keys(tagsE).some((k) => k.startsWith('ICC_Profile:'))) {
    if (await sameImageData(originalPath, editedPath)) fromOriginal.push('-ICC_Profile');
    else warnings.push('the editor dropped the ICC profile and changed the image data: the profile was not restored');
  }
  // The digest keeps saying what it said: the edited file's when it had IIM (in sync stays in
  // sync over the restored datasets), else the original's.
  const stateE = readE.iim.digest;
  const stateO = readO.iim.digest;
  const iimAfter = stateE !== 'no-iim' || hasGroup(tagsO, 'IPTC');
  const newDigest = iimAfter && (stateE === 'in-sync' || (stateE !== 'out-of-sync' && stateO === 'in-sync'));
  if (newDigest) assignments.push(['Photoshop:IPTCDigest', 'new']);
  else if (stateE === 'no-iim' && stateO === 'no-digest') assignments.push(['Photoshop:IPTCDigest', null]);
  else if (stateE === 'no-iim' && stateO === 'out-of-sync') fromOriginal.push('-Photoshop:IPTCDigest');

  // The writes: one rewrite of the file in the usual case (the merged XMP as a block, the tags
  // copied from the original, the assignments), straight from `edited` into `output` if given.
  const target = options.output ?? editedPath;
  const sidecar = `${target}.${randomUUID()}.xmp`;
  const commands: string[][] = [];
  const copyOriginal = fromOriginal.length ? ['-tagsFromFile', originalPath, ...fromOriginal] : [];
  try {
    if (docO && docE) {
      // 1. XMP, merged from the two packets, identity included.
      const revertKeys = new Set(reverted.map((f) => topLevelXmpKey(f.xmp)).filter((k): k is string => !!k));
      const xmp = await mergedXmp({ docO, docE, revertKeys, identity, jpeg: readE.mimeType === 'image/jpeg', sidecar });
      warnings.push(...xmp.warnings);
      // COPY_ARGS, without -E, which would decode the block's entities: these assignments are
      // deletions and `IPTCDigest=new`, nothing -E would change.
      commands.push([...COPY_ARGS, '-m', `-XMP<=${xmp.block}`, ...copyOriginal, ...assignments.map(([t, v]) => assignment(t, v))]);
      if (xmp.copyGroups.length) commands.push([...COPY_ARGS, '-m', '-tagsFromFile', sidecar, ...xmp.copyGroups.map((g) => `-${g}:all`)]);
    } else {
      // Without two parsable packets, exiftool copies the XMP tags it knows, never over the edited file's.
      if (packetO.packet) {
        warnings.push('XMP restored tag by tag: properties in namespaces exiftool does not know may be lost');
        commands.push([...COPY_ARGS, '-m', '-wm', 'cg', '-tagsFromFile', originalPath, '-XMP:all', ...notRestoredArgs()]);
      }
      commands.push([...WRITE_ARGS, '-m', ...copyOriginal, ...[...assignments, ...identity].map(([t, v]) => assignment(t, v))]);
    }
    // IIM restored from the original must carry the values the user meant to change.
    const intendedIim = [...(intended ?? [])].filter((name) => {
      const field = profile.field(name);
      return field && !field.custom && field.read.iim;
    });
    for (const [i, args] of commands.entries()) {
      // The first command makes `output` from `edited`; the others change the result in place.
      // (With -o, exiftool's -overwrite_original would move `edited` to `output`, not copy it.)
      let written: string[];
      if (i === 0 && options.output) {
        const writing = run([...args.filter((a) => a !== '-overwrite_original'), '-o', options.output, editedPath]);
        if (commands.length === 1 && intendedIim.length === 0 && options.onOutputStarted) {
          const done = writing.then(() => undefined);
          done.catch(() => {}); // the caller's to handle; the failure itself is thrown below
          options.onOutputStarted(done);
        }
        written = await writing;
      } else {
        written = await run([...args, target]);
      }
      const tooLarge = written.find((w) => /too large/i.test(w));
      if (tooLarge) throw new ProtocolError('ERR_PAYLOAD_TOO_LARGE', `XMP cannot be written: ${tooLarge}`);
      warnings.push(...written);
    }

    if (intendedIim.length) {
      const current = await readMetadata(target, { profile });
      if (current.iim.digest !== 'no-iim') {
        const change = Object.fromEntries(intendedIim.map((name) => [name, readE.metadata[name] ?? null]));
        const plan = planMetadataWrite(change, current, profile);
        const iim = plan.assignments.filter(([tag]) => tag.startsWith('IPTC:'));
        if (newDigest) iim.push(['Photoshop:IPTCDigest', 'new']);
        warnings.push(...(await run([...WRITE_ARGS, '-m', ...plan.prefix, ...iim.map(([t, v]) => assignment(t, v)), target])));
      }
    }
    if (newDigest) await syncIptcDigest(target);

    const after = await readAllTags(target);
    return {
      restored: [...diffKeys(diffTags(tagsE, after.tags)), ...(!commentE && after.comment ? ['File:Comment'] : [])],
      documentId,
      instanceId,
      warnings: [...new Set(warnings.filter((w) => w && !/^No writable tags set/.test(w)))],
    };
  } catch (error) {
    if (options.output) await rm(options.output, { force: true });
    throw error;
  } finally {
    await rm(sidecar, { force: true });
    await rm(`${sidecar}.block`, { force: true });
  }
}

/** The XMP assignments that record the save: ids, xmpMM:DerivedFrom, a History event, the metadata date. */
function identityAssignments(input: {
  documentId: string;
  originalDocumentId?: string;
  instanceId: string;
  /** The original's ids. */
  derivedFrom: { documentId?: string; originalDocumentId?: string; instanceId?: string };
  base?: PreserveOptions['base'];
  now: Date;
  softwareAgent?: string;
}): Array<[string, TagValue | null]> {
  const { derivedFrom: ids, base, now } = input;
  const assignments: Array<[string, TagValue | null]> = [['XMP-xmpMM:DocumentID', input.documentId]];
  if (input.originalDocumentId) assignments.push(['XMP-xmpMM:OriginalDocumentID', input.originalDocumentId]);
  assignments.push(['XMP-xmpMM:InstanceID', input.instanceId]);
  const derivedFrom: Record<string, string> = {};
  if (ids.instanceId) derivedFrom.InstanceID = ids.instanceId;
  if (ids.documentId) derivedFrom.DocumentID = ids.documentId;
  if (ids.originalDocumentId) derivedFrom.OriginalDocumentID = ids.originalDocumentId;
  if (base) {
    derivedFrom.VersionID = base.versionId;
    derivedFrom.FilePath = base.uri;
  }
  assignments.push(['XMP-xmpMM:DerivedFrom', Object.keys(derivedFrom).length ? derivedFrom : null]);
  const event: Record<string, string> = {
    Action: 'saved',
    InstanceID: input.instanceId,
    When: exifDateTime(now),
    SoftwareAgent: input.softwareAgent ?? `${SOFTWARE.name} ${SOFTWARE.version}`,
    Changed: '/metadata',
  };
  assignments.push(['XMP-xmpMM:History+', event]);
  assignments.push(['XMP-xmp:MetadataDate', exifDateTime(now)]);
  assignments.push(['XMP-photoshop:DocumentAncestors', null]);
  return assignments;
}

/**
 * Steps 1 and 4 for XMP: the edited file's packet plus the original's top-level properties it
 * lacks (and, set back, those in `revertKeys`) go into a sidecar file, where exiftool makes the
 * identity assignments (exactly what it would write into the picture; a block written into a
 * file leaves no room for single XMP tags in the same command). Answers the packet to write as
 * a block and, for a JPEG whose packet outgrows one segment, the exiftool groups to copy tag by
 * tag from the sidecar after it (exiftool spreads them over extended XMP segments).
 */
async function mergedXmp(input: {
  docO: XmpDocument;
  docE: XmpDocument;
  revertKeys: Set<string>;
  identity: Array<[string, TagValue | null]>;
  jpeg: boolean;
  sidecar: string;
}): Promise<{ block: string; copyGroups: string[]; warnings: string[] }> {
  const { docO, docE, revertKeys, sidecar } = input;
  const propsE = xmpProperties(docE);
  const keysE = new Set(propsE.map((p) => p.key));
  for (const prop of propsE) {
    if (prop.key === `${NS.photoshop}DocumentAncestors` || revertKeys.has(prop.key)) removeProperty(prop);
  }
  const toAdd = xmpProperties(docO).filter(
    (prop) => !XMP_NOT_RESTORED.has(prop.key) && !XMP_NAMESPACES_NOT_RESTORED.has(prop.ns) && (!keysE.has(prop.key) || revertKeys.has(prop.key)),
  );
  addProperties(docE, toAdd);
  pruneEmptyDescriptions(docE);
  await writeFile(sidecar, serializeXmpDocument(docE));
  const warnings = await run([...WRITE_ARGS, '-m', ...input.identity.map(([t, v]) => assignment(t, v)), sidecar]);
  if (!input.jpeg) return { block: sidecar, copyGroups: [], warnings };
  let packet = await readFile(sidecar, 'utf8');
  if (Buffer.byteLength(packet) <= JPEG_XMP_LIMIT) return { block: sidecar, copyGroups: [], warnings };

  // Too big for one JPEG segment as a block: the namespaces exiftool knows stay out of the
  // block, largest first, and are copied tag by tag from the sidecar.
  const doc = parseXmpDocument(packet);
  const byNamespace = new Map<string, XmpProperty[]>();
  for (const prop of xmpProperties(doc)) if (EXIFTOOL_GROUP[prop.ns]) byNamespace.set(prop.ns, [...(byNamespace.get(prop.ns) ?? []), prop]);
  const sizes = [...byNamespace].map(([ns, props]) => [ns, props.reduce((n, p) => n + canonicalProperty(p).length, 0)] as const);
  const copyGroups: string[] = [];
  for (const [ns] of sizes.sort((a, b) => b[1] - a[1])) {
    if (Buffer.byteLength(packet) <= JPEG_XMP_LIMIT) break;
    for (const prop of byNamespace.get(ns)!) removeProperty(prop);
    copyGroups.push(EXIFTOOL_GROUP[ns]!);
    pruneEmptyDescriptions(doc);
    packet = serializeXmpDocument(doc);
  }
  if (Buffer.byteLength(packet) > JPEG_XMP_LIMIT) {
    throw new ProtocolError('ERR_PAYLOAD_TOO_LARGE', 'the XMP in unknown namespaces is larger than one JPEG segment');
  }
  await writeFile(`${sidecar}.block`, packet);
  return { block: `${sidecar}.block`, copyGroups, warnings };
}

const exists = (path: string) => access(path).then(
  () => true,
  () => false,
);

function notRestoredArgs(): string[] {
  return TAGS_NOT_RESTORED.map((t) => `--${t}`);
}

/** Whether two files carry the same image data (exiftool's ImageDataHash). */
async function sameImageData(a: string, b: string): Promise<boolean> {
  const hash = async (path: string) => {
    const out = await runExiftool(['-j', '-api', 'ImageHashType=MD5', '-ImageDataHash', path]);
    try {
      return (JSON.parse(out.stdout) as Array<{ ImageDataHash?: string }>)[0]?.ImageDataHash;
    } catch {
      return undefined;
    }
  };
  const [ha, hb] = await Promise.all([hash(a), hash(b)]);
  return ha !== undefined && ha === hb;
}
