//! Logos: checked by their bytes and the size their header declares (before
//! anything is decoded), stored without metadata, thumbnailed (at most
//! 128 px on the longer side), kept in S3 under the organization's prefix,
//! and shown as URLs a browser can load (a configured public base URL, else
//! presigned GETs).

mod metadata;

use std::io::Cursor;
use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use image::{ImageError, ImageFormat, ImageReader, Limits};
use shared::domain::tenant::StoredLogo;
use shared::{AppState, Error};
use uuid::Uuid;

/// Largest logo accepted (in AWS a Lambda request body is at most 6 MB
/// after base64, so through API Gateway about 4.4 MiB actually arrive).
pub const MAX_LOGO_BYTES: usize = 5 * 1024 * 1024;
/// The thumbnail's longer side.
pub const THUMBNAIL_MAX: u32 = 128;
/// Largest width or height accepted, read from the header before decoding:
/// a few hundred KB of PNG can declare 10,000 × 10,000 px (381 MiB decoded).
pub const MAX_LOGO_SIDE: u32 = 4096;
/// The decoder's memory budget for the pixels, well under the function's
/// 256 MB: a 4096 × 4096 RGBA image of 8 bits a channel (64 MiB) fits, the
/// same at 16 bits (128 MiB) does not. (A progressive JPEG's coefficients,
/// which zune-jpeg keeps outside this budget, add at most 2 bytes a sample:
/// 96 MiB at 4096 × 4096 in colour, 48 MiB of pixels besides; still under.)
const MAX_DECODE_BYTES: u64 = 96 * 1024 * 1024;
/// How long a presigned logo URL stays valid (SigV4's maximum is 7 days).
const URL_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600 - 3600);

/// A checked logo: the original without its metadata, and its thumbnail (PNG).
#[derive(Debug)]
pub struct Prepared {
    pub content_type: &'static str,
    pub extension: &'static str,
    pub original: Vec<u8>,
    pub thumbnail_png: Vec<u8>,
}

fn kind(format: ImageFormat) -> Option<(&'static str, &'static str)> {
    match format {
        ImageFormat::Png => Some(("image/png", "png")),
        ImageFormat::Jpeg => Some(("image/jpeg", "jpg")),
        ImageFormat::WebP => Some(("image/webp", "webp")),
        _ => None,
    }
}

fn too_large() -> Error {
    Error::PayloadTooLarge(format!(
        "the logo is larger than {MAX_LOGO_BYTES} bytes (5 MiB)"
    ))
}

/// Reads the body, at most [`MAX_LOGO_BYTES`] of it (a larger declared
/// `Content-Length` is refused unread). Called only once the caller may
/// change the organization. The route takes the body as a stream rather
/// than `Bytes`, so axum's own limit (a text/plain 413) never applies.
pub async fn read(headers: &HeaderMap, body: Body) -> Result<Bytes, Error> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_LOGO_BYTES as u64) {
        return Err(too_large());
    }
    match Limited::new(body, MAX_LOGO_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Err(e) => Err(Error::invalid(format!("the body could not be read: {e}"))),
    }
}

/// A reader of `format` whose decoder stays within the memory budget and,
/// when `max_side` is given, refuses larger images itself.
fn reader(bytes: &[u8], format: ImageFormat, max_side: Option<u32>) -> ImageReader<Cursor<&[u8]>> {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = max_side;
    limits.max_image_height = max_side;
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    reader
}

/// Checks the bytes (what they are, not what they are labelled), that the
/// label agrees and the size its header declares, strips the metadata, and
/// makes the thumbnail.
pub fn prepare(declared: Option<&str>, bytes: &[u8]) -> Result<Prepared, Error> {
    if bytes.is_empty() {
        return Err(Error::invalid(
            "the logo is empty: send the image as the body",
        ));
    }
    if bytes.len() > MAX_LOGO_BYTES {
        return Err(too_large());
    }
    let not_image =
        || Error::UnsupportedMediaType("the body is not a PNG, JPEG or WebP image".into());
    let format = image::guess_format(bytes).map_err(|_| not_image())?;
    let (content_type, extension) = kind(format).ok_or_else(|| {
        Error::UnsupportedMediaType(format!(
            "the body is a {} image; logos are PNG, JPEG or WebP",
            format
                .extensions_str()
                .first()
                .unwrap_or(&"other")
                .to_ascii_uppercase()
        ))
    })?;
    if let Some(declared) = declared {
        let essence = declared
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let essence = if essence == "image/jpg" {
            "image/jpeg".to_owned()
        } else {
            essence
        };
        if essence != content_type && essence != "application/octet-stream" {
            return Err(Error::UnsupportedMediaType(format!(
                "the body is labelled {essence} but is {content_type}"
            )));
        }
    }
    let undecodable =
        |e: ImageError| Error::invalid(format!("the {content_type} image cannot be decoded: {e}"));
    // The header only: nothing is decoded before the size is known.
    let (width, height) = reader(bytes, format, None)
        .into_dimensions()
        .map_err(undecodable)?;
    if width > MAX_LOGO_SIDE || height > MAX_LOGO_SIDE {
        return Err(Error::ImageTooLarge(format!(
            "the image is {width} × {height} px; a logo is at most {MAX_LOGO_SIDE} × {MAX_LOGO_SIDE}"
        )));
    }
    let stripped = metadata::strip(format, bytes)?;
    // The stored bytes are what is decoded, so what is stored is known to decode.
    let mut image = reader(&stripped.bytes, format, Some(MAX_LOGO_SIDE))
        .decode()
        .map_err(|e| match e {
            ImageError::Limits(_) => Error::ImageTooLarge(format!(
                "decoding the {width} × {height} px image takes more than {} MiB; send it with 8 bits a channel or fewer pixels",
                MAX_DECODE_BYTES >> 20
            )),
            e => undecodable(e),
        })?;
    // Browsers turn the original by its EXIF orientation; the thumbnail
    // (a PNG without EXIF) is turned here so the two agree.
    image.apply_orientation(stripped.orientation);
    // Scaled down to fit, never up.
    let thumbnail = if image.width() > THUMBNAIL_MAX || image.height() > THUMBNAIL_MAX {
        image.thumbnail(THUMBNAIL_MAX, THUMBNAIL_MAX)
    } else {
        image
    };
    let mut thumbnail_png = Vec::new();
    thumbnail
        .write_to(&mut Cursor::new(&mut thumbnail_png), ImageFormat::Png)
        .map_err(|e| Error::Internal(format!("encoding the thumbnail: {e}")))?;
    Ok(Prepared {
        content_type,
        extension,
        original: stripped.bytes,
        thumbnail_png,
    })
}

fn bucket(state: &AppState) -> Result<&str, Error> {
    state
        .config
        .logo_bucket
        .as_deref()
        .ok_or_else(|| Error::Config("LOGO_BUCKET is not set".into()))
}

/// Where an organization's logos live (everything of it under one prefix).
pub fn prefix(project: Uuid, org: Uuid) -> String {
    format!("logos/{project}/{org}/")
}

/// Stores the logo and its thumbnail under fresh keys.
pub async fn store(
    state: &AppState,
    project: Uuid,
    org: Uuid,
    prepared: Prepared,
) -> Result<StoredLogo, Error> {
    let bucket = bucket(state)?;
    let version = Uuid::now_v7();
    let logo = StoredLogo {
        key: format!("{}{version}.{}", prefix(project, org), prepared.extension),
        thumbnail_key: format!("{}{version}-thumbnail.png", prefix(project, org)),
        content_type: prepared.content_type.to_owned(),
    };
    let s3 = &state.aws.s3;
    let original = s3
        .put_object()
        .bucket(bucket)
        .key(&logo.key)
        .content_type(prepared.content_type)
        .body(ByteStream::from(prepared.original))
        .send();
    let thumbnail = s3
        .put_object()
        .bucket(bucket)
        .key(&logo.thumbnail_key)
        .content_type("image/png")
        .body(ByteStream::from(prepared.thumbnail_png))
        .send();
    let (original, thumbnail) = tokio::join!(original, thumbnail);
    if original.is_err() || thumbnail.is_err() {
        remove(state, &logo).await;
        let cause = original
            .err()
            .map(|e| e.to_string())
            .or(thumbnail.err().map(|e| e.to_string()))
            .unwrap_or_default();
        return Err(Error::Storage(format!("storing the logo in S3: {cause}")));
    }
    Ok(logo)
}

/// Deletes a logo's objects (best effort: a leftover is found again by the
/// organization's prefix when it is cleaned up).
pub async fn remove(state: &AppState, logo: &StoredLogo) {
    let Ok(bucket) = bucket(state) else { return };
    for key in [&logo.key, &logo.thumbnail_key] {
        if let Err(e) = state
            .aws
            .s3
            .delete_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
        {
            tracing::warn!(key, error = %e, "a logo object was not deleted");
        }
    }
}

/// A URL a browser can load: `LOGO_BASE_URL` + key when configured, else a
/// presigned GET (computed locally, no request).
pub async fn url(state: &AppState, key: &str) -> Result<String, Error> {
    if let Some(base) = &state.config.logo_base_url {
        return Ok(format!("{}/{key}", base.trim_end_matches('/')));
    }
    let config = PresigningConfig::expires_in(URL_LIFETIME)
        .map_err(|e| Error::Internal(format!("presigning: {e}")))?;
    let request = state
        .aws
        .s3
        .get_object()
        .bucket(bucket(state)?)
        .key(key)
        .presigned(config)
        .await
        .map_err(|e| Error::Internal(format!("presigning the logo URL: {e}")))?;
    Ok(request.uri().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let image = image::RgbaImage::from_fn(width, height, |x, y| {
            image::Rgba([(x % 256) as u8, (y % 256) as u8, 128, 255])
        });
        let mut out = Vec::new();
        image
            .write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
            .unwrap();
        out
    }

    #[test]
    fn a_png_gets_a_thumbnail_at_most_128_px() {
        let prepared = prepare(Some("image/png"), &png(300, 150)).unwrap();
        assert_eq!(prepared.content_type, "image/png");
        let thumb = image::load_from_memory(&prepared.thumbnail_png).unwrap();
        assert_eq!((thumb.width(), thumb.height()), (128, 64));
        let small = prepare(None, &png(20, 40)).unwrap();
        let thumb = image::load_from_memory(&small.thumbnail_png).unwrap();
        assert_eq!((thumb.width(), thumb.height()), (20, 40), "never enlarged");
        let tall = prepare(None, &png(100, 1000)).unwrap();
        let thumb = image::load_from_memory(&tall.thumbnail_png).unwrap();
        assert_eq!(thumb.height(), 128);
    }

    #[test]
    fn bytes_decide_not_labels() {
        let text = b"hello, I am not a picture";
        let err = prepare(Some("image/png"), text).unwrap_err();
        assert_eq!(err.status().as_u16(), 415, "{err}");
        let err = prepare(Some("image/jpeg"), &png(10, 10)).unwrap_err();
        assert_eq!(err.status().as_u16(), 415, "{err}");
        assert!(prepare(Some("image/png"), &[]).is_err());
        let mut truncated = png(64, 64);
        truncated.truncate(60);
        assert_eq!(
            prepare(Some("image/png"), &truncated)
                .unwrap_err()
                .status()
                .as_u16(),
            400
        );
        let huge = vec![0u8; MAX_LOGO_BYTES + 1];
        assert_eq!(prepare(None, &huge).unwrap_err().status().as_u16(), 413);
    }

    /// A PNG that is only a header: IHDR as given, an empty IDAT, IEND.
    fn png_header(width: u32, height: u32, bit_depth: u8) -> Vec<u8> {
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = width.to_be_bytes().to_vec();
        ihdr.extend_from_slice(&height.to_be_bytes());
        ihdr.extend_from_slice(&[bit_depth, 6, 0, 0, 0]);
        for (kind, data) in [(b"IHDR", &ihdr[..]), (b"IDAT", &[][..]), (b"IEND", &[][..])] {
            out.extend_from_slice(&(data.len() as u32).to_be_bytes());
            out.extend_from_slice(kind);
            out.extend_from_slice(data);
            let mut crc = crc32fast::Hasher::new();
            crc.update(kind);
            crc.update(data);
            out.extend_from_slice(&crc.finalize().to_be_bytes());
        }
        out
    }

    #[test]
    fn the_header_decides_the_size_before_any_decoding() {
        // Only headers: were any of them decoded, the empty IDAT would be
        // a 400, not the size's 422.
        for (width, height) in [(10_000, 10_000), (4097, 1), (1, 4097)] {
            let err = prepare(Some("image/png"), &png_header(width, height, 8)).unwrap_err();
            assert_eq!(err.status().as_u16(), 422, "{err}");
            assert_eq!(err.code(), "image_too_large");
            assert!(
                err.to_string().contains(&format!("{width} × {height}")),
                "{err}"
            );
        }
        // 4096 × 4096 at 16 bits a channel is 128 MiB decoded: over the
        // decoder's budget, refused before the pixels are read.
        let err = prepare(None, &png_header(4096, 4096, 16)).unwrap_err();
        assert_eq!(err.code(), "image_too_large", "{err}");
        assert!(
            prepare(None, &png(4096, 1)).is_ok(),
            "the limit itself is fine"
        );
    }

    #[test]
    fn gif_is_no_longer_a_logo() {
        let gif = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;";
        let err = prepare(Some("image/gif"), gif).unwrap_err();
        assert_eq!(err.status().as_u16(), 415);
        assert!(err.to_string().contains("GIF"), "{err}");
    }

    #[test]
    fn the_thumbnail_is_turned_as_the_exif_says() {
        // Orientation 6 (turn 90° clockwise to show): a 300 × 150 image is
        // shown 150 × 300.
        let image = image::RgbaImage::from_pixel(300, 150, image::Rgba([1, 2, 3, 255]));
        let mut jpeg = Vec::new();
        let mut encoder = image::codecs::jpeg::JpegEncoder::new(&mut jpeg);
        let exif = b"II\x2a\x00\x08\x00\x00\x00\x01\x00\x12\x01\x03\x00\x01\x00\x00\x00\x06\x00\x00\x00\x00\x00\x00\x00";
        image::ImageEncoder::set_exif_metadata(&mut encoder, exif.to_vec()).unwrap();
        let rgb = image::DynamicImage::ImageRgba8(image).to_rgb8();
        image::ImageEncoder::write_image(encoder, &rgb, 300, 150, image::ExtendedColorType::Rgb8)
            .unwrap();
        let prepared = prepare(Some("image/jpeg"), &jpeg).unwrap();
        let thumb = image::load_from_memory(&prepared.thumbnail_png).unwrap();
        assert_eq!((thumb.width(), thumb.height()), (64, 128));
    }
}
