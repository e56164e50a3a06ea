/**
 * The one field table: API field ↔ XMP property ↔ IIM dataset ↔ EXIF tag ↔ exiftool tag.
 *
 * Published as `/.well-known/imagine/metadata-profile`; read and written by the companion's
 * metadata engine. `exiftool` names the group-qualified tag written for the field (XMP is the
 * source of truth); `read` lists the exiftool tags tried when reading, best first (MWG
 * composites where exiftool has one, so EXIF/IPTC/XMP are reconciled by the MWG rules).
 * IIM lengths are the limits of the IPTC IIM 4.2 specification.
 */
import type { MetadataFieldMapping } from './schemas/discovery.ts';

export type MetadataFieldType = MetadataFieldMapping['type'];

export interface MetadataField extends MetadataFieldMapping {
  /** exiftool tags to read, best first (exiftool-vendored returns them ungrouped). */
  read: readonly string[];
  /** true when the field is part of the asset's rights summary. */
  rights?: boolean;
}

const f = (field: MetadataField): MetadataField => Object.freeze(field);

export const METADATA_PROFILE_NAME = 'imagine-core/0.1';

export const metadataFields: readonly MetadataField[] = Object.freeze([
  f({ field: 'creator', label: 'Creator', type: 'list', xmp: 'dc:creator', iim: '2:80 By-line', iimMaxLength: 32, exif: 'Artist', exiftool: 'XMP-dc:Creator', read: ['Creator', 'By-line', 'Artist'] }),
  f({ field: 'creatorJobTitle', label: "Creator's job title", type: 'text', xmp: 'photoshop:AuthorsPosition', iim: '2:85 By-lineTitle', iimMaxLength: 32, exiftool: 'XMP-photoshop:AuthorsPosition', read: ['AuthorsPosition', 'By-lineTitle'] }),
  f({ field: 'title', label: 'Title', type: 'langAlt', xmp: 'dc:title', iim: '2:05 ObjectName', iimMaxLength: 64, exiftool: 'XMP-dc:Title', read: ['Title', 'ObjectName'] }),
  f({ field: 'description', label: 'Description', type: 'langAlt', xmp: 'dc:description', iim: '2:120 Caption-Abstract', iimMaxLength: 2000, exif: 'ImageDescription', exiftool: 'XMP-dc:Description', read: ['Description', 'Caption-Abstract', 'ImageDescription'] }),
  f({ field: 'descriptionWriter', label: 'Description writer', type: 'text', xmp: 'photoshop:CaptionWriter', iim: '2:122 Writer-Editor', iimMaxLength: 32, exiftool: 'XMP-photoshop:CaptionWriter', read: ['CaptionWriter', 'Writer-Editor'] }),
  f({ field: 'keywords', label: 'Keywords', type: 'list', xmp: 'dc:subject', iim: '2:25 Keywords', iimMaxLength: 64, exiftool: 'XMP-dc:Subject', read: ['Keywords', 'Subject'] }),
  f({ field: 'headline', label: 'Headline', type: 'text', xmp: 'photoshop:Headline', iim: '2:105 Headline', iimMaxLength: 256, exiftool: 'XMP-photoshop:Headline', read: ['Headline'] }),
  f({ field: 'copyrightNotice', label: 'Copyright notice', type: 'langAlt', xmp: 'dc:rights', iim: '2:116 CopyrightNotice', iimMaxLength: 128, exif: 'Copyright', exiftool: 'XMP-dc:Rights', read: ['Copyright', 'Rights', 'CopyrightNotice'], rights: true }),
  f({ field: 'creditLine', label: 'Credit line', type: 'text', xmp: 'photoshop:Credit', iim: '2:110 Credit', iimMaxLength: 32, exiftool: 'XMP-photoshop:Credit', read: ['Credit'] }),
  f({ field: 'source', label: 'Source', type: 'text', xmp: 'photoshop:Source', iim: '2:115 Source', iimMaxLength: 32, exiftool: 'XMP-photoshop:Source', read: ['Source'] }),
  f({ field: 'usageTerms', label: 'Rights usage terms', type: 'langAlt', xmp: 'xmpRights:UsageTerms', exiftool: 'XMP-xmpRights:UsageTerms', read: ['UsageTerms'], rights: true }),
  f({ field: 'webStatement', label: 'Web statement of rights', type: 'text', xmp: 'xmpRights:WebStatement', exiftool: 'XMP-xmpRights:WebStatement', read: ['WebStatement'], rights: true }),
  f({ field: 'rightsMarked', label: 'Copyright status', type: 'boolean', xmp: 'xmpRights:Marked', exiftool: 'XMP-xmpRights:Marked', read: ['Marked'], rights: true }),
  f({ field: 'instructions', label: 'Instructions', type: 'text', xmp: 'photoshop:Instructions', iim: '2:40 SpecialInstructions', iimMaxLength: 256, exiftool: 'XMP-photoshop:Instructions', read: ['Instructions', 'SpecialInstructions'] }),
  f({ field: 'jobId', label: 'Job identifier', type: 'text', xmp: 'photoshop:TransmissionReference', iim: '2:103 OriginalTransmissionReference', iimMaxLength: 32, exiftool: 'XMP-photoshop:TransmissionReference', read: ['TransmissionReference', 'OriginalTransmissionReference'] }),
  f({ field: 'dateCreated', label: 'Date created', type: 'date', xmp: 'photoshop:DateCreated', iim: '2:55 DateCreated + 2:60 TimeCreated', exif: 'DateTimeOriginal', exiftool: 'XMP-photoshop:DateCreated', read: ['DateTimeOriginal', 'DateCreated'] }),
  f({ field: 'city', label: 'City', type: 'text', xmp: 'photoshop:City', iim: '2:90 City', iimMaxLength: 32, exiftool: 'XMP-photoshop:City', read: ['City'] }),
  f({ field: 'sublocation', label: 'Sublocation', type: 'text', xmp: 'Iptc4xmpCore:Location', iim: '2:92 Sub-location', iimMaxLength: 32, exiftool: 'XMP-iptcCore:Location', read: ['Location', 'Sub-location'] }),
  f({ field: 'state', label: 'Province or state', type: 'text', xmp: 'photoshop:State', iim: '2:95 Province-State', iimMaxLength: 32, exiftool: 'XMP-photoshop:State', read: ['State', 'Province-State'] }),
  f({ field: 'country', label: 'Country', type: 'text', xmp: 'photoshop:Country', iim: '2:101 Country-PrimaryLocationName', iimMaxLength: 64, exiftool: 'XMP-photoshop:Country', read: ['Country', 'Country-PrimaryLocationName'] }),
  f({ field: 'countryCode', label: 'Country code', type: 'text', xmp: 'Iptc4xmpCore:CountryCode', iim: '2:100 Country-PrimaryLocationCode', iimMaxLength: 3, exiftool: 'XMP-iptcCore:CountryCode', read: ['CountryCode', 'Country-PrimaryLocationCode'] }),
  f({ field: 'rating', label: 'Rating', type: 'integer', xmp: 'xmp:Rating', exif: 'Rating', exiftool: 'XMP-xmp:Rating', read: ['Rating'] }),
  f({ field: 'label', label: 'Label', type: 'text', xmp: 'xmp:Label', exiftool: 'XMP-xmp:Label', read: ['Label'] }),
  f({ field: 'licensor', label: 'Licensor', type: 'text', xmp: 'plus:Licensor/plus:LicensorName', exiftool: 'XMP-plus:LicensorName', read: ['LicensorName'], rights: true }),
  f({ field: 'imageSupplier', label: 'Image supplier', type: 'text', xmp: 'plus:ImageSupplier/plus:ImageSupplierName', exiftool: 'XMP-plus:ImageSupplierName', read: ['ImageSupplierName'] }),
  f({ field: 'licenseEndDate', label: 'Licence end date', type: 'date', xmp: 'plus:LicenseEndDate', iim: '2:37 ExpirationDate', exiftool: 'XMP-plus:LicenseEndDate', read: ['LicenseEndDate', 'ExpirationDate'], rights: true }),
  f({ field: 'digitalSourceType', label: 'Digital source type', type: 'text', xmp: 'Iptc4xmpExt:DigitalSourceType', exiftool: 'XMP-iptcExt:DigitalSourceType', read: ['DigitalSourceType'] }),
  f({ field: 'registryId', label: 'Registry item id (imagine:// URI)', type: 'list', xmp: 'Iptc4xmpExt:RegistryId/Iptc4xmpExt:RegItemId', exiftool: 'XMP-iptcExt:RegistryItemID', read: ['RegistryItemID'] }),
]);

export type MetadataFieldName = (typeof metadataFields)[number]['field'];

const byName = new Map(metadataFields.map((field) => [field.field, field]));

export function getMetadataField(name: string): MetadataField | undefined {
  return byName.get(name);
}
