//! Logos: checked by their bytes, thumbnailed (at most 128 px on the longer
//! side), kept in S3 under the organization's prefix, and shown as URLs a
//! browser can load (a configured public base URL, else presigned GETs).

use std::io::Cursor;
use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use image::{ImageFormat, ImageReader, Limits};
use shared::domain::tenant::StoredLogo;
use shared::{AppState, Error};
use uuid::Uuid;

/// Largest logo accepted (in AWS a Lambda request body is at most 6 MB
/// after base64, so through API Gateway about 4.4 MiB actually arrive).
pub const MAX_LOGO_BYTES: usize = 5 * 1024 * 1024;
/// The thumbnail's longer side.
pub const THUMBNAIL_MAX: u32 = 128;
/// Largest width or height decoded (a guard against decompression bombs).
const MAX_DIMENSION: u32 = 10_000;
/// How long a presigned logo URL stays valid (SigV4's maximum is 7 days).
const URL_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600 - 3600);

/// A checked logo and its thumbnail (PNG).
#[derive(Debug)]
pub struct Prepared {
    pub content_type: &'static str,
    pub extension: &'static str,
    pub thumbnail_png: Vec<u8>,
}

fn kind(format: ImageFormat) -> Option<(&'static str, &'static str)> {
    match format {
        ImageFormat::Png => Some(("image/png", "png")),
        ImageFormat::Jpeg => Some(("image/jpeg", "jpg")),
        ImageFormat::Gif => Some(("image/gif", "gif")),
        ImageFormat::WebP => Some(("image/webp", "webp")),
        _ => None,
    }
}

/// Checks the bytes (what they are, not what they are labelled), that the
/// label agrees, and makes the thumbnail.
pub fn prepare(declared: Option<&str>, bytes: &[u8]) -> Result<Prepared, Error> {
    if bytes.is_empty() {
        return Err(Error::invalid(
            "the logo is empty: send the image as the body",
        ));
    }
    if bytes.len() > MAX_LOGO_BYTES {
        return Err(Error::PayloadTooLarge(format!(
            "the logo is {} bytes; at most {MAX_LOGO_BYTES}",
            bytes.len()
        )));
    }
    let not_image =
        || Error::UnsupportedMediaType("the body is not a PNG, JPEG, GIF or WebP image".into());
    let format = image::guess_format(bytes).map_err(|_| not_image())?;
    let (content_type, extension) = kind(format).ok_or_else(not_image)?;
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
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_DIMENSION);
    limits.max_image_height = Some(MAX_DIMENSION);
    reader.limits(limits);
    let image = reader
        .decode()
        .map_err(|e| Error::invalid(format!("the {content_type} image cannot be decoded: {e}")))?;
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
    prepared: &Prepared,
    bytes: Vec<u8>,
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
        .body(ByteStream::from(bytes))
        .send();
    let thumbnail = s3
        .put_object()
        .bucket(bucket)
        .key(&logo.thumbnail_key)
        .content_type("image/png")
        .body(ByteStream::from(prepared.thumbnail_png.clone()))
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
}
