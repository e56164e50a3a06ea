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
 * `edited` is changed in place (atomically, by exiftool), or with `output` only read, the result
 * going into a copy of it; `original` is only read.
 */
import { randomUUID } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
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
   * Leave `edited` as it is and write the result into `path`, which the caller is filling with
   * a copy of `edited` meanwhile: `ready` resolves once the copy is complete (it is awaited
   * after the files are read, before the first write, so the copy overlaps the reading).
   */
  output?: { path: string; ready: Promise<unknown> };
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

function parsePacket(packet: Buffer | undefined, which: string, warnings: string[]): XmpDocument | undefined {
  if (!packet) return emptyXmpDocument();
  try {
    return parseXmpDocument(packet.toString('utf8'));
  } catch (error) {
    warnings.push(`the ${which} XMP packet cannot be merged (${(error as Error).message})`);
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
  const [readO, readE] = await Promise.all([readMetadata(originalPath, { profile }), readMetadata(editedPath, { profile })]);
  if (readO.unreadable || readE.unreadable) {
    throw new ProtocolError('ERR_UNSUPPORTED_MEDIA_TYPE', `metadata cannot be preserved: ${readO.unreadable ?? readE.unreadable}`);
  }
  const [{ tags: tagsO, family0: family0O }, { tags: tagsE, family0: family0E }, packetO, packetE] = await Promise.all([
    readAllTags(originalPath),
    readAllTags(editedPath),
    extractXmpPacket(originalPath),
    extractXmpPacket(editedPath),
  ]);
  warnings.push(...packetO.warnings, ...packetE.warnings);
  // Everything from here on writes, and reads what was written: the file changed in place, or
  // the caller's copy of it (made while the files above were read).
  const target = options.output?.path ?? editedPath;
  if (options.output) await options.output.ready;

  const intended = options.intended ? new Set(options.intended) : undefined;
  const reverted = intended
    ? profile.fields.filter((f) => !intended.has(f.field) && JSON.stringify(readO.metadata[f.field]) !== JSON.stringify(readE.metadata[f.field]))
    : [];

  // 1. XMP, merged from the two packets.
  const docO = parsePacket(packetO.packet, 'original', warnings);
  const docE = parsePacket(packetE.packet, 'edited', warnings);
  const propsO = docO ? xmpProperties(docO) : [];
  const idsO = {
    documentId: textOf(propsO.find((p) => p.key === `${NS.xmpMM}DocumentID`)),
    originalDocumentId: textOf(propsO.find((p) => p.key === `${NS.xmpMM}OriginalDocumentID`)),
    instanceId: textOf(propsO.find((p) => p.key === `${NS.xmpMM}InstanceID`)),
  };
  const propsE = docE ? xmpProperties(docE) : [];
  const editedInstance = textOf(propsE.find((p) => p.key === `${NS.xmpMM}InstanceID`));
  const tmpPacket = `${target}.${randomUUID()}.xmp`;
  try {
    if (packetO.packet || packetE.packet) {
      const revertKeys = new Set(reverted.map((f) => topLevelXmpKey(f.xmp)).filter((k): k is string => !!k));
      warnings.push(...(await restoreXmp({ originalPath, editedPath: target, docO, docE, originalHasXmp: !!packetO.packet, revertKeys, jpeg: readE.mimeType === 'image/jpeg', tmpPacket })));
    }

    // 2. IIM, EXIF and the rest: the tags the edited file lacks, each into its own group.
    const missing: string[] = [];
    const keysE = new Set(Object.keys(tagsE));
    for (const key of Object.keys(tagsO)) {
      const [group, name] = key.split(':') as [string, string];
      if (keysE.has(key) || key.includes('#') || !RESTORED_GROUPS.has(group) || TAGS_NOT_RESTORED.includes(name) || TAGS_NOT_RESTORED.includes(key)) continue;
      missing.push(`-${key}>${key}`);
    }
    const makerNotes = (family: Record<string, string>) => Object.values(family).includes('MakerNotes');
    if (makerNotes(family0O) && !makerNotes(family0E)) missing.push('-MakerNotes');
    missing.push('-File:Comment');
    warnings.push(...(await run([...COPY_ARGS, '-m', '-wm', 'cg', '-tagsFromFile', originalPath, ...missing, target])));

    // IIM restored from the original must carry the values the user meant to change.
    let iimPrefix: string[] = [];
    let iimAssignments: Array<[string, TagValue | null]> = [];
    const intendedIim = [...(intended ?? [])].filter((name) => {
      const field = profile.field(name);
      return field && !field.custom && field.read.iim;
    });
    if (intendedIim.length) {
      const current = await readMetadata(target, { profile });
      if (current.iim.digest !== 'no-iim') {
        const change = Object.fromEntries(intendedIim.map((name) => [name, readE.metadata[name] ?? null]));
        const plan = planMetadataWrite(change, current, profile);
        iimPrefix = plan.prefix;
        iimAssignments = plan.assignments.filter(([tag]) => tag.startsWith('IPTC:'));
      }
    }

    // 3 and 4: set back, ICC, identity, digest.
    const instanceId = editedInstance && editedInstance !== idsO.instanceId ? editedInstance : `xmp.iid:${randomUUID()}`;
    const documentId = idsO.documentId ?? textOf(propsE.find((p) => p.key === `${NS.xmpMM}DocumentID`)) ?? `xmp.did:${randomUUID()}`;
    const assignments: Array<[string, TagValue | null]> = [];
    const copied: string[] = [];
    for (const field of reverted) {
      for (const tag of [...(field.read.iim ?? []), ...(field.read.exif ?? []).filter((t) => !t.startsWith('Composite:'))]) {
        if (hasTag(tagsO, tag)) copied.push(`-${tag}`);
        else if (hasTag(tagsE, tag)) assignments.push([tag, null]);
      }
    }
    if (Object.keys(tagsO).some((k) => k.startsWith('ICC_Profile:')) && !Object.keys(tagsE).some((k) => k.startsWith('ICC_Profile:'))) {
      if (await sameImageData(originalPath, target)) copied.push('-ICC_Profile');
      else warnings.push('the editor dropped the ICC profile and changed the image data: the profile was not restored');
    }
    assignments.push(['XMP-xmpMM:DocumentID', documentId]);
    if (idsO.originalDocumentId) assignments.push(['XMP-xmpMM:OriginalDocumentID', idsO.originalDocumentId]);
    assignments.push(['XMP-xmpMM:InstanceID', instanceId]);
    const derivedFrom: Record<string, string> = {};
    if (idsO.instanceId) derivedFrom.InstanceID = idsO.instanceId;
    if (idsO.documentId) derivedFrom.DocumentID = idsO.documentId;
    if (idsO.originalDocumentId) derivedFrom.OriginalDocumentID = idsO.originalDocumentId;
    if (options.base) {
      derivedFrom.VersionID = options.base.versionId;
      derivedFrom.FilePath = options.base.uri;
    }
    assignments.push(['XMP-xmpMM:DerivedFrom', Object.keys(derivedFrom).length ? derivedFrom : null]);
    const event: Record<string, string> = {
      Action: 'saved',
      InstanceID: instanceId,
      When: exifDateTime(now),
      SoftwareAgent: options.softwareAgent ?? `${SOFTWARE.name} ${SOFTWARE.version}`,
      Changed: '/metadata',
    };
    assignments.push(['XMP-xmpMM:History+', event]);
    assignments.push(['XMP-xmp:MetadataDate', exifDateTime(now)]);
    assignments.push(['XMP-photoshop:DocumentAncestors', null]);
    // The digest keeps saying what it said: the edited file's when it had IIM (in sync stays in
    // sync over the restored datasets), else the original's.
    const stateE = readE.iim.digest;
    const stateO = readO.iim.digest;
    const iimAfter = stateE !== 'no-iim' || hasGroup(tagsO, 'IPTC');
    if (iimAfter && (stateE === 'in-sync' || (stateE !== 'out-of-sync' && stateO === 'in-sync'))) {
      assignments.push(['Photoshop:IPTCDigest', 'new']);
    } else if (stateE === 'no-iim' && stateO === 'no-digest') {
      assignments.push(['Photoshop:IPTCDigest', null]);
    } else if (stateE === 'no-iim' && stateO === 'out-of-sync') {
      copied.push('-Photoshop:IPTCDigest');
    }
    // Datasets copied from the original are left out of the re-encoding copy of the edited file.
    if (iimPrefix.length) iimPrefix.push(...copied.filter((c) => c.startsWith('-IPTC:')).map((c) => `-${c}`));
    const args = [...WRITE_ARGS, '-m', ...iimPrefix];
    if (copied.length) args.push('-tagsFromFile', originalPath, ...copied);
    args.push(...[...iimAssignments, ...assignments].map(([t, v]) => assignment(t, v)), target);
    warnings.push(...(await run(args)));
    if (assignments.some(([tag, value]) => tag === 'Photoshop:IPTCDigest' && value === 'new')) await syncIptcDigest(target);

    const after = await readAllTags(target);
    return {
      restored: diffKeys(diffTags(tagsE, after.tags)),
      documentId,
      instanceId,
      warnings: [...new Set(warnings.filter((w) => w && !/^No writable tags set/.test(w)))],
    };
  } finally {
    await rm(tmpPacket, { force: true });
    await rm(`${tmpPacket}.block`, { force: true });
  }
}

/**
 * Step 1: the edited file's XMP becomes its own packet plus the original's top-level
 * properties it lacks (and, set back, those in `revertKeys`), written as one block. Without
 * two parsable packets, exiftool copies the XMP tags it knows.
 */
async function restoreXmp(input: {
  originalPath: string;
  editedPath: string;
  docO: XmpDocument | undefined;
  docE: XmpDocument | undefined;
  originalHasXmp: boolean;
  revertKeys: Set<string>;
  jpeg: boolean;
  tmpPacket: string;
}): Promise<string[]> {
  const { originalPath, editedPath, docO, docE, revertKeys, tmpPacket } = input;
  if (!docO || !docE) {
    if (!input.originalHasXmp) return [];
    return [
      'XMP restored tag by tag: properties in namespaces exiftool does not know may be lost',
      ...(await run([...COPY_ARGS, '-m', '-wm', 'cg', '-tagsFromFile', originalPath, '-XMP:all', ...notRestoredArgs(), editedPath])),
    ];
  }
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
  let packet = serializeXmpDocument(docE);
  await writeFile(tmpPacket, packet);
  if (!input.jpeg || Buffer.byteLength(packet) <= JPEG_XMP_LIMIT) return writeBlock(tmpPacket, editedPath);

  // Too big for one JPEG segment as a block: the namespaces exiftool knows stay out of the
  // block, largest first, and exiftool copies them tag by tag from the full packet (it spreads
  // them over extended XMP segments).
  const byNamespace = new Map<string, XmpProperty[]>();
  for (const prop of xmpProperties(docE)) if (EXIFTOOL_GROUP[prop.ns]) byNamespace.set(prop.ns, [...(byNamespace.get(prop.ns) ?? []), prop]);
  const sizes = [...byNamespace].map(([ns, props]) => [ns, props.reduce((n, p) => n + canonicalProperty(p).length, 0)] as const);
  const copyNamespaces: string[] = [];
  for (const [ns] of sizes.sort((a, b) => b[1] - a[1])) {
    if (Buffer.byteLength(packet) <= JPEG_XMP_LIMIT) break;
    for (const prop of byNamespace.get(ns)!) removeProperty(prop);
    copyNamespaces.push(EXIFTOOL_GROUP[ns]!);
    pruneEmptyDescriptions(docE);
    packet = serializeXmpDocument(docE);
  }
  if (Buffer.byteLength(packet) > JPEG_XMP_LIMIT) {
    throw new ProtocolError('ERR_PAYLOAD_TOO_LARGE', 'the XMP in unknown namespaces is larger than one JPEG segment');
  }
  await writeFile(`${tmpPacket}.block`, packet);
  return [
    ...(await writeBlock(`${tmpPacket}.block`, editedPath)),
    ...(await run([...COPY_ARGS, '-m', '-tagsFromFile', tmpPacket, ...copyNamespaces.map((g) => `-${g}:all`), editedPath])),
  ];
}

/** Block write of an XMP packet (no -E: it would decode the packet's entities). */
async function writeBlock(packetPath: string, target: string): Promise<string[]> {
  const warnings = await run([...COPY_ARGS, '-m', `-XMP<=${packetPath}`, target]);
  const tooLarge = warnings.find((w) => /too large/i.test(w));
  if (tooLarge) throw new ProtocolError('ERR_PAYLOAD_TOO_LARGE', `XMP cannot be written: ${tooLarge}`);
  return warnings;
}

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
