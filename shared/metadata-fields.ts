/**
 * The one field table: API field ↔ XMP property ↔ IIM dataset ↔ EXIF tag ↔ exiftool tag.
 *
 * Published as `/.well-known/imagine/metadata-profile` (the core profile; a server may move
 * fields with a custom profile, see companion/metadata/profile.ts) and read and written by
 * the companion's metadata engine:
 *
 * - `exiftool` is the group-qualified XMP tag always written (XMP is the source of truth);
 * - `read` lists where the field is found, by family, best first. Reading follows the Metadata
 *   Working Group rules: a non-blank `read.exif` value wins; otherwise XMP (`read.xmp`, first
 *   non-blank) when the file has no IIM or its IPTC digest says XMP and IIM are in sync;
 *   otherwise IIM (`read.iim`; for dates `[date, time]`), with a value IIM cut at its limit
 *   restored from XMP.
 * - On write, `read.exif` and the other `read.xmp` tags are updated where the file already has
 *   them (so a stale copy cannot win the next read), IIM where the file already has IIM
 *   (cut to `iimMaxLength` bytes, the full value kept in XMP), and `mirrors` where present.
 *
 * IIM lengths are the limits of IPTC IIM 4.2. `location` ranks the location fields for the
 * privacy filter. Group names are exiftool's (`XMP-iptcCore` is Iptc4xmpCore, `XMP-iptcExt`
 * is Iptc4xmpExt).
 */
import type { MetadataFieldMapping } from './schemas/discovery.ts';

export type MetadataFieldType = MetadataFieldMapping['type'];

export interface MetadataFieldTags {
  /** EXIF tags whose non-blank value wins (DateTimeOriginal with its SubSecTimeOriginal and OffsetTimeOriginal). */
  exif?: readonly string[];
  /** The IIM dataset; for dates the date dataset and then the time dataset. */
  iim?: readonly string[];
  /** XMP tags, best first; `exiftool` is one of them. */
  xmp: readonly string[];
}

/** How precisely a location field places the picture, for the privacy filter. */
export type LocationPrecision = 'country' | 'region' | 'detail';

export interface MetadataField extends MetadataFieldMapping {
  read: MetadataFieldTags;
  /** Tags rewritten with the field when the file already has them, never read. */
  mirrors?: readonly string[];
  /** true when the field is part of the asset's rights summary. */
  rights?: boolean;
  /** Set on the fields that say where the picture was taken. */
  location?: LocationPrecision;
}

const f = (field: MetadataField): MetadataField => Object.freeze(field);

export const METADATA_PROFILE_NAME = 'imagine-core/0.1';

export const metadataFields: readonly MetadataField[] = Object.freeze([
  f({ field: 'creator', label: 'Creator', type: 'list', xmp: 'dc:creator', iim: '2:80 By-line', iimMaxLength: 32, exif: 'Artist', exiftool: 'XMP-dc:Creator',
    read: { exif: ['EXIF:Artist'], iim: ['IPTC:By-line'], xmp: ['XMP-dc:Creator'] } }),
  f({ field: 'creatorJobTitle', label: "Creator's job title", type: 'text', xmp: 'photoshop:AuthorsPosition', iim: '2:85 By-lineTitle', iimMaxLength: 32, exiftool: 'XMP-photoshop:AuthorsPosition',
    read: { iim: ['IPTC:By-lineTitle'], xmp: ['XMP-photoshop:AuthorsPosition'] } }),
  f({ field: 'title', label: 'Title', type: 'langAlt', xmp: 'dc:title', iim: '2:05 ObjectName', iimMaxLength: 64, exiftool: 'XMP-dc:Title',
    read: { iim: ['IPTC:ObjectName'], xmp: ['XMP-dc:Title'] } }),
  f({ field: 'description', label: 'Description', type: 'langAlt', xmp: 'dc:description', iim: '2:120 Caption-Abstract', iimMaxLength: 2000, exif: 'ImageDescription', exiftool: 'XMP-dc:Description',
    read: { exif: ['EXIF:ImageDescription'], iim: ['IPTC:Caption-Abstract'], xmp: ['XMP-dc:Description'] } }),
  f({ field: 'descriptionWriter', label: 'Description writer', type: 'text', xmp: 'photoshop:CaptionWriter', iim: '2:122 Writer-Editor', iimMaxLength: 32, exiftool: 'XMP-photoshop:CaptionWriter',
    read: { iim: ['IPTC:Writer-Editor'], xmp: ['XMP-photoshop:CaptionWriter'] } }),
  f({ field: 'keywords', label: 'Keywords', type: 'list', xmp: 'dc:subject', iim: '2:25 Keywords', iimMaxLength: 64, exiftool: 'XMP-dc:Subject',
    read: { iim: ['IPTC:Keywords'], xmp: ['XMP-dc:Subject'] } }),
  f({ field: 'headline', label: 'Headline', type: 'text', xmp: 'photoshop:Headline', iim: '2:105 Headline', iimMaxLength: 256, exiftool: 'XMP-photoshop:Headline',
    read: { iim: ['IPTC:Headline'], xmp: ['XMP-photoshop:Headline'] } }),
  f({ field: 'copyrightNotice', label: 'Copyright notice', type: 'langAlt', xmp: 'dc:rights', iim: '2:116 CopyrightNotice', iimMaxLength: 128, exif: 'Copyright', exiftool: 'XMP-dc:Rights', rights: true,
    read: { exif: ['EXIF:Copyright'], iim: ['IPTC:CopyrightNotice'], xmp: ['XMP-dc:Rights'] } }),
  f({ field: 'creditLine', label: 'Credit line', type: 'text', xmp: 'photoshop:Credit', iim: '2:110 Credit', iimMaxLength: 32, exiftool: 'XMP-photoshop:Credit',
    read: { iim: ['IPTC:Credit'], xmp: ['XMP-photoshop:Credit'] } }),
  f({ field: 'source', label: 'Source', type: 'text', xmp: 'photoshop:Source', iim: '2:115 Source', iimMaxLength: 32, exiftool: 'XMP-photoshop:Source',
    read: { iim: ['IPTC:Source'], xmp: ['XMP-photoshop:Source'] } }),
  f({ field: 'usageTerms', label: 'Rights usage terms', type: 'langAlt', xmp: 'xmpRights:UsageTerms', exiftool: 'XMP-xmpRights:UsageTerms', rights: true,
    read: { xmp: ['XMP-xmpRights:UsageTerms'] } }),
  f({ field: 'webStatement', label: 'Web statement of rights', type: 'text', xmp: 'xmpRights:WebStatement', exiftool: 'XMP-xmpRights:WebStatement', rights: true,
    read: { xmp: ['XMP-xmpRights:WebStatement'] } }),
  f({ field: 'rightsMarked', label: 'Copyright status', type: 'boolean', xmp: 'xmpRights:Marked', exiftool: 'XMP-xmpRights:Marked', rights: true,
    read: { xmp: ['XMP-xmpRights:Marked'] } }),
  f({ field: 'instructions', label: 'Instructions', type: 'text', xmp: 'photoshop:Instructions', iim: '2:40 SpecialInstructions', iimMaxLength: 256, exiftool: 'XMP-photoshop:Instructions',
    read: { iim: ['IPTC:SpecialInstructions'], xmp: ['XMP-photoshop:Instructions'] } }),
  f({ field: 'jobId', label: 'Job identifier', type: 'text', xmp: 'photoshop:TransmissionReference', iim: '2:103 OriginalTransmissionReference', iimMaxLength: 32, exiftool: 'XMP-photoshop:TransmissionReference',
    read: { iim: ['IPTC:OriginalTransmissionReference'], xmp: ['XMP-photoshop:TransmissionReference'] } }),
  f({ field: 'dateCreated', label: 'Date created', type: 'date', xmp: 'photoshop:DateCreated', iim: '2:55 DateCreated + 2:60 TimeCreated', exif: 'DateTimeOriginal', exiftool: 'XMP-photoshop:DateCreated',
    read: { exif: ['EXIF:DateTimeOriginal'], iim: ['IPTC:DateCreated', 'IPTC:TimeCreated'], xmp: ['XMP-photoshop:DateCreated'] } }),
  f({ field: 'city', label: 'City', type: 'text', xmp: 'photoshop:City', iim: '2:90 City', iimMaxLength: 32, exiftool: 'XMP-photoshop:City', location: 'detail',
    read: { iim: ['IPTC:City'], xmp: ['XMP-iptcExt:LocationShownCity', 'XMP-photoshop:City'] } }),
  f({ field: 'sublocation', label: 'Sublocation', type: 'text', xmp: 'Iptc4xmpCore:Location', iim: '2:92 Sub-location', iimMaxLength: 32, exiftool: 'XMP-iptcCore:Location', location: 'detail',
    read: { iim: ['IPTC:Sub-location'], xmp: ['XMP-iptcExt:LocationShownSublocation', 'XMP-iptcCore:Location'] } }),
  f({ field: 'state', label: 'Province or state', type: 'text', xmp: 'photoshop:State', iim: '2:95 Province-State', iimMaxLength: 32, exiftool: 'XMP-photoshop:State', location: 'region',
    read: { iim: ['IPTC:Province-State'], xmp: ['XMP-iptcExt:LocationShownProvinceState', 'XMP-photoshop:State'] } }),
  f({ field: 'country', label: 'Country', type: 'text', xmp: 'photoshop:Country', iim: '2:101 Country-PrimaryLocationName', iimMaxLength: 64, exiftool: 'XMP-photoshop:Country', location: 'country',
    read: { iim: ['IPTC:Country-PrimaryLocationName'], xmp: ['XMP-iptcExt:LocationShownCountryName', 'XMP-photoshop:Country'] } }),
  f({ field: 'countryCode', label: 'Country code', type: 'text', xmp: 'Iptc4xmpCore:CountryCode', iim: '2:100 Country-PrimaryLocationCode', iimMaxLength: 3, exiftool: 'XMP-iptcCore:CountryCode', location: 'country',
    read: { iim: ['IPTC:Country-PrimaryLocationCode'], xmp: ['XMP-iptcExt:LocationShownCountryCode', 'XMP-iptcCore:CountryCode'] } }),
  // MWG reads the rating from XMP only; the Microsoft EXIF tag is kept equal when present.
  f({ field: 'rating', label: 'Rating', type: 'integer', xmp: 'xmp:Rating', exif: 'Rating', exiftool: 'XMP-xmp:Rating', mirrors: ['EXIF:Rating'],
    read: { xmp: ['XMP-xmp:Rating'] } }),
  f({ field: 'label', label: 'Label', type: 'text', xmp: 'xmp:Label', exiftool: 'XMP-xmp:Label',
    read: { xmp: ['XMP-xmp:Label'] } }),
  f({ field: 'licensor', label: 'Licensor', type: 'text', xmp: 'plus:Licensor/plus:LicensorName', exiftool: 'XMP-plus:LicensorName', rights: true,
    read: { xmp: ['XMP-plus:LicensorName'] } }),
  f({ field: 'imageSupplier', label: 'Image supplier', type: 'text', xmp: 'plus:ImageSupplier/plus:ImageSupplierName', exiftool: 'XMP-plus:ImageSupplierName',
    read: { xmp: ['XMP-plus:ImageSupplierName'] } }),
  // No IPTC Core/Extension expiry property: PLUS LicenseEndDate, legacy IIM 2:37/2:38.
  f({ field: 'licenseEndDate', label: 'Licence end date', type: 'date', xmp: 'plus:LicenseEndDate', iim: '2:37 ExpirationDate + 2:38 ExpirationTime', exiftool: 'XMP-plus:LicenseEndDate', rights: true,
    read: { iim: ['IPTC:ExpirationDate', 'IPTC:ExpirationTime'], xmp: ['XMP-plus:LicenseEndDate'] } }),
  f({ field: 'digitalSourceType', label: 'Digital source type', type: 'text', xmp: 'Iptc4xmpExt:DigitalSourceType', exiftool: 'XMP-iptcExt:DigitalSourceType',
    read: { xmp: ['XMP-iptcExt:DigitalSourceType'] } }),
  // The asset's imagine:// URI lives here (RegItemId; RegOrgId names the registry).
  f({ field: 'registryId', label: 'Registry item id (imagine:// URI)', type: 'list', xmp: 'Iptc4xmpExt:RegistryId/Iptc4xmpExt:RegItemId', exiftool: 'XMP-iptcExt:RegistryItemID',
    read: { xmp: ['XMP-iptcExt:RegistryItemID'] } }),
]);

export type MetadataFieldName = (typeof metadataFields)[number]['field'];

const byName = new Map(metadataFields.map((field) => [field.field, field]));

export function getMetadataField(name: string): MetadataField | undefined {
  return byName.get(name);
}

/** The field as the profile document publishes it (without the engine's reading details). */
export function toFieldMapping(field: MetadataField): MetadataFieldMapping {
  const { read: _read, mirrors: _mirrors, rights: _rights, location: _location, ...mapping } = field;
  return mapping;
}
