//! A logo's original is stored without its metadata (EXIF with GPS and
//! camera serials, XMP, text chunks, comments, embedded thumbnails), but
//! otherwise as sent: the container is rewritten keeping only what draws the
//! image, so no pixel is recompressed (re-encoding would lose quality for
//! JPEG and blow lossy WebP up to lossless). Kept: what decoding needs and
//! what colours or animates the pixels (ICC profiles, gamma, transparency,
//! JFIF density, Adobe's colour transform). An EXIF orientation other than
//! "as stored" survives as a minimal EXIF block naming only it, so a photo
//! is not shown on its side.
//!
//! Each format is walked by a whitelist: anything not known to be drawing
//! data (private chunks, unknown segments, bytes after the end) is dropped.

use image::metadata::Orientation;
use image::ImageFormat;
use shared::Error;

/// The stored original and the orientation its EXIF asked for.
#[derive(Debug)]
pub struct Stripped {
    pub bytes: Vec<u8>,
    pub orientation: Orientation,
}

/// Rewrites `bytes` (already known to be `format`) without metadata.
pub fn strip(format: ImageFormat, bytes: &[u8]) -> Result<Stripped, Error> {
    match format {
        ImageFormat::Png => png(bytes),
        ImageFormat::Jpeg => jpeg(bytes),
        ImageFormat::WebP => webp(bytes),
        other => Err(Error::Internal(format!(
            "no metadata stripping for {other:?}"
        ))),
    }
}

fn malformed(kind: &str, what: &str) -> Error {
    Error::invalid(format!("the {kind} image is malformed: {what}"))
}

/// The orientation an EXIF (TIFF) block names, when it is not "as stored".
fn turned(exif: &[u8]) -> Option<Orientation> {
    Orientation::from_exif_chunk(exif).filter(|o| *o != Orientation::NoTransforms)
}

/// A TIFF block (little-endian) with one IFD entry: Orientation.
fn orientation_exif(orientation: Orientation) -> Vec<u8> {
    let mut tiff = b"II\x2a\x00\x08\x00\x00\x00".to_vec();
    tiff.extend_from_slice(&1u16.to_le_bytes());
    tiff.extend_from_slice(&0x0112u16.to_le_bytes()); // Orientation
    tiff.extend_from_slice(&3u16.to_le_bytes()); // SHORT
    tiff.extend_from_slice(&1u32.to_le_bytes());
    tiff.extend_from_slice(&u32::from(orientation.to_exif()).to_le_bytes());
    tiff.extend_from_slice(&0u32.to_le_bytes()); // no next IFD
    tiff
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// Chunks that draw the image: the critical ones, colour and transparency,
/// physical size, and APNG's animation. Everything else goes (tEXt, zTXt,
/// iTXt with XMP, eXIf, tIME, private chunks).
const PNG_KEPT: &[&[u8; 4]] = &[
    b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"cHRM", b"gAMA", b"iCCP", b"sBIT", b"sRGB",
    b"cICP", b"mDCV", b"cLLI", b"bKGD", b"pHYs", b"acTL", b"fcTL", b"fdAT",
];

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    let length = u32::try_from(data.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(&crc.finalize().to_be_bytes());
}

fn png(bytes: &[u8]) -> Result<Stripped, Error> {
    let bad = |what| malformed("PNG", what);
    let mut rest = bytes
        .strip_prefix(PNG_SIGNATURE)
        .ok_or(bad("no signature"))?;
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(PNG_SIGNATURE);
    let mut orientation = Orientation::NoTransforms;
    loop {
        let header = rest.get(..8).ok_or(bad("it ends before IEND"))?;
        let length = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let kind = [header[4], header[5], header[6], header[7]];
        let chunk = length
            .checked_add(12)
            .and_then(|total| rest.get(..total))
            .ok_or(bad("a chunk runs past the end"))?;
        if &kind == b"eXIf" {
            if let Some(turn) = turned(&chunk[8..8 + length]) {
                if orientation == Orientation::NoTransforms {
                    orientation = turn;
                    png_chunk(&mut out, b"eXIf", &orientation_exif(turn));
                }
            }
        } else if PNG_KEPT.contains(&&kind) {
            out.extend_from_slice(chunk);
        }
        rest = &rest[chunk.len()..];
        if &kind == b"IEND" {
            return Ok(Stripped {
                bytes: out,
                orientation,
            });
        }
    }
}

/// JPEG markers kept: SOF0–SOF15 with DHT and DAC (C0–CF), DNL, DRI, DHP,
/// EXP, DQT, SOS. APP0 (JFIF, without its thumbnail), APP2 (ICC profile)
/// and APP14 (Adobe) are judged by their content; the other APPn (EXIF,
/// XMP, IPTC, maker notes), COM and everything else go.
fn jpeg_marker_kept(marker: u8) -> bool {
    matches!(marker, 0xC0..=0xCF | 0xDA..=0xDF)
}

fn jpeg_segment(out: &mut Vec<u8>, marker: u8, payload: &[u8]) {
    let length = u16::try_from(payload.len() + 2).unwrap_or(u16::MAX);
    out.extend_from_slice(&[0xFF, marker]);
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(payload);
}

fn jpeg(bytes: &[u8]) -> Result<Stripped, Error> {
    let bad = |what| malformed("JPEG", what);
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return Err(bad("no start of image"));
    }
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&[0xFF, 0xD8]);
    let mut orientation = Orientation::NoTransforms;
    let mut at = 2;
    loop {
        if bytes.get(at) != Some(&0xFF) {
            return Err(bad("a segment does not start with a marker"));
        }
        // Any number of 0xFF may pad before a marker.
        while bytes.get(at) == Some(&0xFF) {
            at += 1;
        }
        let marker = *bytes
            .get(at)
            .ok_or(bad("it ends before the end of image"))?;
        at += 1;
        match marker {
            0xD9 => {
                // Whatever follows the end of image (appended files,
                // vendors' trailers) is not stored.
                out.extend_from_slice(&[0xFF, 0xD9]);
                return Ok(Stripped {
                    bytes: out,
                    orientation,
                });
            }
            // Markers without a length (TEM, RSTn outside a scan).
            0x01 | 0xD0..=0xD7 => continue,
            0xD8 => return Err(bad("a second start of image")),
            _ => {}
        }
        let length = bytes
            .get(at..at + 2)
            .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])))
            .filter(|l| *l >= 2)
            .ok_or(bad("a segment has no length"))?;
        let payload = bytes
            .get(at + 2..at + length)
            .ok_or(bad("a segment runs past the end"))?;
        at += length;
        match marker {
            0xE0 if payload.starts_with(b"JFIF\0") && payload.len() >= 14 => {
                // Version, units and density; the thumbnail (which may show
                // what a crop removed) is dropped.
                let mut jfif = payload[..14].to_vec();
                jfif[12] = 0;
                jfif[13] = 0;
                jpeg_segment(&mut out, 0xE0, &jfif);
            }
            0xE1 => {
                if let Some(turn) = payload.strip_prefix(b"Exif\0\0").and_then(turned) {
                    if orientation == Orientation::NoTransforms {
                        orientation = turn;
                        let mut exif = b"Exif\0\0".to_vec();
                        exif.extend(orientation_exif(turn));
                        jpeg_segment(&mut out, 0xE1, &exif);
                    }
                }
            }
            0xE2 if payload.starts_with(b"ICC_PROFILE\0") => {
                jpeg_segment(&mut out, marker, payload)
            }
            0xEE if payload.starts_with(b"Adobe") => jpeg_segment(&mut out, marker, payload),
            m if jpeg_marker_kept(m) => jpeg_segment(&mut out, marker, payload),
            _ => {}
        }
        if marker == 0xDA {
            // The entropy-coded scan runs to the next marker that is not a
            // stuffed 0xFF00 or a restart marker.
            let scan = at;
            loop {
                let next = bytes[at..]
                    .iter()
                    .position(|b| *b == 0xFF)
                    .map(|p| at + p)
                    .ok_or(bad("a scan runs past the end"))?;
                match bytes.get(next + 1) {
                    Some(0x00 | 0xD0..=0xD7) => at = next + 2,
                    Some(_) => {
                        at = next;
                        break;
                    }
                    None => return Err(bad("a scan runs past the end")),
                }
            }
            out.extend_from_slice(&bytes[scan..at]);
        }
    }
}

/// WebP chunks kept: the header (VP8X, its EXIF/XMP flags cleared), the
/// bitstreams and alpha, animation, and the ICC profile.
const WEBP_KEPT: &[&[u8; 4]] = &[
    b"VP8X", b"VP8 ", b"VP8L", b"ALPH", b"ANIM", b"ANMF", b"ICCP",
];
const VP8X_EXIF: u8 = 0x08;
const VP8X_XMP: u8 = 0x04;

fn webp_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(kind);
    let length = u32::try_from(data.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(data);
    if data.len() % 2 == 1 {
        out.push(0);
    }
}

fn webp(bytes: &[u8]) -> Result<Stripped, Error> {
    let bad = |what| malformed("WebP", what);
    if bytes.len() < 12 || &bytes[..4] != b"RIFF" || &bytes[8..12] != b"WEBP" {
        return Err(bad("no RIFF WEBP header"));
    }
    let riff = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
    let mut rest = riff
        .checked_add(8)
        .and_then(|end| bytes.get(12..end))
        .ok_or(bad("the RIFF size runs past the end"))?;
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(b"RIFF\0\0\0\0WEBP");
    let mut orientation = Orientation::NoTransforms;
    let mut flags_at = None;
    while !rest.is_empty() {
        let header = rest.get(..8).ok_or(bad("a chunk header is cut off"))?;
        let kind = [header[0], header[1], header[2], header[3]];
        let length = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let data = rest
            .get(8..8 + length)
            .ok_or(bad("a chunk runs past the end"))?;
        if &kind == b"EXIF" {
            // EXIF belongs to the extended format (VP8X) only.
            if let Some(turn) = turned(data).filter(|_| flags_at.is_some()) {
                if orientation == Orientation::NoTransforms {
                    orientation = turn;
                    webp_chunk(&mut out, b"EXIF", &orientation_exif(turn));
                }
            }
        } else if WEBP_KEPT.contains(&&kind) {
            if &kind == b"VP8X" && flags_at.is_none() && !data.is_empty() {
                flags_at = Some(out.len() + 8);
            }
            webp_chunk(&mut out, &kind, data);
        }
        // Chunks are padded to an even length (the last one's pad may be missing).
        rest = rest.get(8 + length + length % 2..).unwrap_or_default();
    }
    if let Some(flags) = flags_at {
        out[flags] &= !(VP8X_EXIF | VP8X_XMP);
        if orientation != Orientation::NoTransforms {
            out[flags] |= VP8X_EXIF;
        }
    }
    let riff = u32::try_from(out.len() - 8).map_err(|_| bad("it is too large"))?;
    out[4..8].copy_from_slice(&riff.to_le_bytes());
    Ok(Stripped {
        bytes: out,
        orientation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::codecs::jpeg::JpegEncoder;
    use image::codecs::png::PngEncoder;
    use image::codecs::webp::WebPEncoder;
    use image::{ImageDecoder, ImageEncoder, ImageReader, RgbaImage};
    use std::io::Cursor;

    /// EXIF as a camera writes it: Make, Orientation, and a GPS IFD with
    /// the latitude (little-endian TIFF).
    fn camera_exif(orientation: u16) -> Vec<u8> {
        let mut t = b"II\x2a\x00\x08\x00\x00\x00".to_vec();
        let entry = |t: &mut Vec<u8>, tag: u16, kind: u16, count: u32, value: u32| {
            t.extend_from_slice(&tag.to_le_bytes());
            t.extend_from_slice(&kind.to_le_bytes());
            t.extend_from_slice(&count.to_le_bytes());
            t.extend_from_slice(&value.to_le_bytes());
        };
        // IFD0 at 8 (3 entries, 42 bytes), Make at 50, GPS IFD at 60
        // (2 entries, 30 bytes), latitude at 90.
        t.extend_from_slice(&3u16.to_le_bytes());
        entry(&mut t, 0x010F, 2, 10, 50);
        entry(&mut t, 0x0112, 3, 1, u32::from(orientation));
        entry(&mut t, 0x8825, 4, 1, 60);
        t.extend_from_slice(&0u32.to_le_bytes());
        t.extend_from_slice(b"SecretCam\0");
        t.extend_from_slice(&2u16.to_le_bytes());
        entry(&mut t, 0x0001, 2, 2, u32::from_le_bytes(*b"N\0\0\0"));
        entry(&mut t, 0x0002, 5, 3, 90);
        t.extend_from_slice(&0u32.to_le_bytes());
        for (n, d) in [(52u32, 1u32), (31, 1), (1234, 100)] {
            t.extend_from_slice(&n.to_le_bytes());
            t.extend_from_slice(&d.to_le_bytes());
        }
        t
    }

    const XMP: &[u8] = b"<x:xmpmeta xmlns:x='adobe:ns:meta/'><exif:GPSLatitude>52,31.12N</exif:GPSLatitude></x:xmpmeta>";

    fn picture() -> RgbaImage {
        RgbaImage::from_fn(40, 30, |x, y| {
            image::Rgba([(x * 6) as u8, (y * 8) as u8, 90, 255])
        })
    }

    fn encode(format: ImageFormat, exif: Vec<u8>) -> Vec<u8> {
        let image = picture();
        let mut out = Vec::new();
        let (w, h) = image.dimensions();
        match format {
            ImageFormat::Png => {
                let mut e = PngEncoder::new(&mut out);
                e.set_exif_metadata(exif).unwrap();
                e.write_image(&image, w, h, image::ExtendedColorType::Rgba8)
                    .unwrap();
            }
            ImageFormat::Jpeg => {
                let rgb = image::DynamicImage::ImageRgba8(image).to_rgb8();
                let mut e = JpegEncoder::new_with_quality(&mut out, 90);
                e.set_exif_metadata(exif).unwrap();
                e.set_icc_profile(b"a colour profile".to_vec()).unwrap();
                e.write_image(&rgb, w, h, image::ExtendedColorType::Rgb8)
                    .unwrap();
            }
            _ => {
                let mut e = WebPEncoder::new_lossless(&mut out);
                e.set_exif_metadata(exif).unwrap();
                e.write_image(&image, w, h, image::ExtendedColorType::Rgba8)
                    .unwrap();
            }
        }
        out
    }

    fn png_chunks(bytes: &[u8]) -> Vec<[u8; 4]> {
        let mut kinds = Vec::new();
        let mut at = 8;
        while at + 8 <= bytes.len() {
            let length = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
            kinds.push(bytes[at + 4..at + 8].try_into().unwrap());
            at += length + 12;
        }
        kinds
    }

    /// The segments before the first scan: (marker, payload).
    fn jpeg_segments(bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let mut segments = Vec::new();
        let mut at = 2;
        loop {
            let marker = bytes[at + 1];
            let length = usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
            segments.push((marker, bytes[at + 4..at + 2 + length].to_vec()));
            if marker == 0xDA {
                return segments;
            }
            at += 2 + length;
        }
    }

    fn webp_chunks(bytes: &[u8]) -> Vec<([u8; 4], Vec<u8>)> {
        let mut chunks = Vec::new();
        let mut at = 12;
        while at + 8 <= bytes.len() {
            let length = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
            chunks.push((
                bytes[at..at + 4].try_into().unwrap(),
                bytes[at + 8..at + 8 + length].to_vec(),
            ));
            at += 8 + length + length % 2;
        }
        chunks
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    fn pixels(bytes: &[u8]) -> RgbaImage {
        image::load_from_memory(bytes).unwrap().to_rgba8()
    }

    fn orientation(format: ImageFormat, bytes: &[u8]) -> Orientation {
        ImageReader::with_format(Cursor::new(bytes), format)
            .into_decoder()
            .unwrap()
            .orientation()
            .unwrap()
    }

    #[test]
    fn a_png_loses_exif_xmp_text_and_trailing_bytes_but_keeps_its_pixels() {
        let encoded = encode(ImageFormat::Png, camera_exif(1));
        // An editor's XMP (iTXt), a comment (tEXt) and a time (tIME) after
        // IHDR, and bytes after IEND.
        let mut sent = encoded[..33].to_vec();
        let mut itxt = b"XML:com.adobe.xmp\0\0\0\0\0".to_vec();
        itxt.extend_from_slice(XMP);
        png_chunk(&mut sent, b"iTXt", &itxt);
        png_chunk(&mut sent, b"tEXt", b"Comment\0shot at home by SecretCam");
        png_chunk(&mut sent, b"tIME", &[7, 234, 1, 2, 3, 4, 5]);
        sent.extend_from_slice(&encoded[33..]);
        sent.extend_from_slice(b"SecretCam trailer");
        assert!(png_chunks(&sent).contains(b"eXIf"));

        let stripped = strip(ImageFormat::Png, &sent).unwrap();
        let kinds = png_chunks(&stripped.bytes);
        for gone in [b"eXIf", b"iTXt", b"tEXt", b"tIME"] {
            assert!(!kinds.contains(gone), "{kinds:?}");
        }
        assert_eq!(kinds.last(), Some(b"IEND"));
        assert!(!contains(&stripped.bytes, b"SecretCam"));
        assert!(!contains(&stripped.bytes, b"xmpmeta"));
        assert_eq!(stripped.orientation, Orientation::NoTransforms);
        assert_eq!(pixels(&stripped.bytes), pixels(&encoded));
    }

    #[test]
    fn a_jpeg_loses_exif_xmp_comments_and_the_jfif_thumbnail_but_keeps_its_pixels() {
        let encoded = encode(ImageFormat::Jpeg, camera_exif(1));
        // A JFIF APP0 with a 1 × 1 thumbnail, an XMP APP1 and a comment,
        // right after SOI.
        let mut sent = vec![0xFF, 0xD8];
        let mut jfif = b"JFIF\0\x01\x02\x00\x00\x01\x00\x01\x01\x01".to_vec();
        jfif.extend_from_slice(&[255, 0, 0]);
        jpeg_segment(&mut sent, 0xE0, &jfif);
        let mut xmp = b"http://ns.adobe.com/xap/1.0/\0".to_vec();
        xmp.extend_from_slice(XMP);
        jpeg_segment(&mut sent, 0xE1, &xmp);
        jpeg_segment(&mut sent, 0xFE, b"shot at home by SecretCam");
        sent.extend_from_slice(&encoded[2..]);
        let markers: Vec<u8> = jpeg_segments(&sent).iter().map(|s| s.0).collect();
        assert!(
            markers.iter().filter(|m| **m == 0xE1).count() == 2,
            "{markers:x?}"
        );

        let stripped = strip(ImageFormat::Jpeg, &sent).unwrap();
        let segments = jpeg_segments(&stripped.bytes);
        let markers: Vec<u8> = segments.iter().map(|s| s.0).collect();
        assert!(
            !markers.contains(&0xE1) && !markers.contains(&0xFE),
            "{markers:x?}"
        );
        let app0: Vec<_> = segments.iter().filter(|s| s.0 == 0xE0).collect();
        assert!(app0.iter().all(|s| s.1.len() == 14 && s.1[12..] == [0, 0]));
        assert!(
            segments
                .iter()
                .any(|s| s.0 == 0xE2 && s.1.starts_with(b"ICC_PROFILE\0")),
            "the colour profile stays"
        );
        assert!(!contains(&stripped.bytes, b"SecretCam"));
        assert!(!contains(&stripped.bytes, b"xmpmeta"));
        assert!(!contains(&stripped.bytes, b"Exif\0\0"));
        assert!(stripped.bytes.ends_with(&[0xFF, 0xD9]));
        assert_eq!(
            pixels(&stripped.bytes),
            pixels(&encoded),
            "no pixel recompressed"
        );
    }

    #[test]
    fn a_webp_loses_exif_xmp_and_their_flags_but_keeps_its_pixels() {
        let encoded = encode(ImageFormat::WebP, camera_exif(1));
        let mut sent = encoded.clone();
        webp_chunk(&mut sent, b"XMP ", XMP);
        let riff = (sent.len() - 8) as u32;
        sent[4..8].copy_from_slice(&riff.to_le_bytes());
        let chunks = webp_chunks(&sent);
        assert_eq!(chunks[0].0, *b"VP8X");
        sent[20] |= VP8X_XMP;
        assert!(chunks.iter().any(|c| &c.0 == b"EXIF"));

        let stripped = strip(ImageFormat::WebP, &sent).unwrap();
        let chunks = webp_chunks(&stripped.bytes);
        let kinds: Vec<_> = chunks.iter().map(|c| c.0).collect();
        assert!(
            !kinds.contains(b"EXIF") && !kinds.contains(b"XMP "),
            "{kinds:?}"
        );
        assert_eq!(
            chunks[0].1[0] & (VP8X_EXIF | VP8X_XMP),
            0,
            "the flags say so"
        );
        assert_eq!(
            u32::from_le_bytes(stripped.bytes[4..8].try_into().unwrap()) as usize,
            stripped.bytes.len() - 8
        );
        assert!(!contains(&stripped.bytes, b"SecretCam"));
        assert!(!contains(&stripped.bytes, b"xmpmeta"));
        assert_eq!(pixels(&stripped.bytes), pixels(&encoded));
    }

    #[test]
    fn an_exif_orientation_survives_alone() {
        for format in [ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::WebP] {
            let sent = encode(format, camera_exif(6));
            assert_eq!(orientation(format, &sent), Orientation::Rotate90);
            let stripped = strip(format, &sent).unwrap();
            assert_eq!(stripped.orientation, Orientation::Rotate90, "{format:?}");
            assert_eq!(orientation(format, &stripped.bytes), Orientation::Rotate90);
            assert!(contains(
                &stripped.bytes,
                &orientation_exif(Orientation::Rotate90)
            ));
            assert!(!contains(&stripped.bytes, b"SecretCam"), "{format:?}");
            let exif = ImageReader::with_format(Cursor::new(&stripped.bytes), format)
                .into_decoder()
                .unwrap()
                .exif_metadata()
                .unwrap();
            assert_eq!(
                exif,
                Some(orientation_exif(Orientation::Rotate90)),
                "{format:?}: nothing but the orientation"
            );
            assert_eq!(pixels(&stripped.bytes), pixels(&sent), "{format:?}");
        }
    }

    #[test]
    fn cut_or_broken_containers_are_400() {
        for format in [ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::WebP] {
            let whole = encode(format, Vec::new());
            for cut in [whole.len() / 2, whole.len() - 1, 13] {
                let err = strip(format, &whole[..cut]).unwrap_err();
                assert_eq!(err.status().as_u16(), 400, "{format:?} cut at {cut}: {err}");
            }
        }
        let mut huge_chunk = encode(ImageFormat::Png, Vec::new());
        huge_chunk[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(
            strip(ImageFormat::Png, &huge_chunk)
                .unwrap_err()
                .status()
                .as_u16(),
            400
        );
    }
}
