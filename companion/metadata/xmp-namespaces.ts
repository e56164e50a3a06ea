/**
 * XMP namespaces the metadata engine names, and exiftool's group for each (exiftool copies
 * a namespace it knows tag by tag with `-tagsFromFile FILE -XMP-<group>:all`; a namespace it
 * does not know can only travel inside a whole packet).
 */
export const NS = Object.freeze({
  dc: 'http://purl.org/dc/elements/1.1/',
  xmp: 'http://ns.adobe.com/xap/1.0/',
  xmpMM: 'http://ns.adobe.com/xap/1.0/mm/',
  xmpRights: 'http://ns.adobe.com/xap/1.0/rights/',
  photoshop: 'http://ns.adobe.com/photoshop/1.0/',
  Iptc4xmpCore: 'http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/',
  Iptc4xmpExt: 'http://iptc.org/std/Iptc4xmpExt/2008-02-29/',
  plus: 'http://ns.useplus.org/ldf/xmp/1.0/',
  exif: 'http://ns.adobe.com/exif/1.0/',
  exifEX: 'http://cipa.jp/exif/1.0/',
  tiff: 'http://ns.adobe.com/tiff/1.0/',
  aux: 'http://ns.adobe.com/exif/1.0/aux/',
  crs: 'http://ns.adobe.com/camera-raw-settings/1.0/',
  xmpNote: 'http://ns.adobe.com/xmp/note/',
  xmpBJ: 'http://ns.adobe.com/xap/1.0/bj/',
  xmpTPg: 'http://ns.adobe.com/xap/1.0/t/pg/',
  xmpDM: 'http://ns.adobe.com/xmp/1.0/DynamicMedia/',
  pdf: 'http://ns.adobe.com/pdf/1.3/',
  lr: 'http://ns.adobe.com/lightroom/1.0/',
  GCamera: 'http://ns.google.com/photos/1.0/camera/',
});

/** exiftool's XMP group for a namespace URI. */
export const EXIFTOOL_GROUP: Record<string, string> = {
  [NS.dc]: 'XMP-dc',
  [NS.xmp]: 'XMP-xmp',
  [NS.xmpMM]: 'XMP-xmpMM',
  [NS.xmpRights]: 'XMP-xmpRights',
  [NS.photoshop]: 'XMP-photoshop',
  [NS.Iptc4xmpCore]: 'XMP-iptcCore',
  [NS.Iptc4xmpExt]: 'XMP-iptcExt',
  [NS.plus]: 'XMP-plus',
  [NS.exif]: 'XMP-exif',
  [NS.exifEX]: 'XMP-exifEX',
  [NS.tiff]: 'XMP-tiff',
  [NS.aux]: 'XMP-aux',
  [NS.crs]: 'XMP-crs',
  [NS.xmpBJ]: 'XMP-xmpBJ',
  [NS.xmpTPg]: 'XMP-xmpTPg',
  [NS.xmpDM]: 'XMP-xmpDM',
  [NS.pdf]: 'XMP-pdf',
  [NS.lr]: 'XMP-lr',
  [NS.GCamera]: 'XMP-GCamera',
};
