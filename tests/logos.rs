//! `PUT /v2/organization/{org_id}/logo` through the tenant router against
//! the emulator (issue 18, attack 5 and the logo's 413): the caller's right
//! to change the organization is checked before the body is read, the body
//! is capped with a problem document, the size the header declares is
//! checked before anything is decoded, only PNG, JPEG and WebP are logos,
//! and the object stored in S3 carries no metadata.

use std::io::Cursor;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes, HttpBody};
use axum::http::{Method, Request, StatusCode};
use image::{ImageEncoder, ImageFormat};
use integration_tests::{call, project, send, session_token, state_with_bucket, Exchange};
use serde_json::{json, Value};
use shared::store::CreatedProject;
use shared::AppState;

const MIB: usize = 1024 * 1024;

/// A project with an organization (created by a secret key) and the
/// tenant router, on a bucket of the test's own.
struct Setup {
    state: AppState,
    project: CreatedProject,
    tenant: axum::Router,
    org: String,
}

impl Setup {
    async fn new() -> Setup {
        let state = state_with_bucket(None).await;
        let project = project(&state).await;
        let tenant = tenant::router(state.clone());
        let body = json!({"organization_detail": {"name": "Acme", "type": "Vendor", "pricing_tier_id": "professional"}});
        let made = call(
            &tenant,
            Method::POST,
            "/v2/organization",
            Some(&project.secret_key),
            Some(&body.to_string()),
        )
        .await;
        assert_eq!(made.status, StatusCode::CREATED, "{:?}", made.body);
        let org = made.body["id"].as_str().unwrap().to_owned();
        Setup {
            state,
            project,
            tenant,
            org,
        }
    }

    fn path(&self) -> String {
        format!("/v2/organization/{}/logo", self.org)
    }

    async fn put(&self, credential: &str, content_type: &str, body: Body) -> Exchange {
        self.put_to(&self.path(), credential, content_type, body)
            .await
    }

    async fn put_to(
        &self,
        path: &str,
        credential: &str,
        content_type: &str,
        body: Body,
    ) -> Exchange {
        let request = Request::builder()
            .method(Method::PUT)
            .uri(path)
            .header("authorization", format!("Bearer {credential}"))
            .header("content-type", content_type)
            .body(body)
            .unwrap();
        send(&self.tenant, request).await
    }

    /// The organization as read (its ETag says whether it changed).
    async fn read(&self) -> Exchange {
        call(
            &self.tenant,
            Method::GET,
            &format!("/v2/organization/{}", self.org),
            Some(&self.project.secret_key),
            None,
        )
        .await
    }

    /// Keys of the stored objects of the organization.
    async fn objects(&self) -> Vec<String> {
        let prefix = format!("logos/{}/{}/", self.project.project_id, self.org);
        let out = self
            .state
            .aws
            .s3
            .list_objects_v2()
            .bucket(self.state.config.logo_bucket.as_deref().unwrap())
            .prefix(prefix)
            .send()
            .await
            .expect("listing");
        out.contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect()
    }

    /// The stored original (not the thumbnail): its content type and bytes.
    async fn original(&self) -> (String, Vec<u8>) {
        let keys = self.objects().await;
        let key = keys
            .iter()
            .find(|k| !k.ends_with("-thumbnail.png"))
            .expect("an original");
        let object = self
            .state
            .aws
            .s3
            .get_object()
            .bucket(self.state.config.logo_bucket.as_deref().unwrap())
            .key(key)
            .send()
            .await
            .expect("reading the original");
        let content_type = object.content_type().unwrap_or_default().to_owned();
        let bytes = object.body.collect().await.unwrap().into_bytes().to_vec();
        (content_type, bytes)
    }
}

fn assert_problem(r: &Exchange, status: StatusCode, code: &str) {
    assert_eq!(r.status, status, "{:?}", r.body);
    assert_eq!(
        r.content_type.as_deref(),
        Some("application/problem+json"),
        "{:?}",
        r.body
    );
    assert_eq!(r.body["code"], code, "{:?}", r.body);
    assert_eq!(r.body["status"], status.as_u16());
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(&crc.finalize().to_be_bytes());
}

/// Deflate's bits, least significant first; Huffman codes most significant
/// first (RFC 1951 3.1.1).
#[derive(Default)]
struct Bits {
    out: Vec<u8>,
    pending: u64,
    count: u32,
}

impl Bits {
    fn put(&mut self, value: u32, count: u32) {
        self.pending |= u64::from(value) << self.count;
        self.count += count;
        while self.count >= 8 {
            self.out.push(self.pending as u8);
            self.pending >>= 8;
            self.count -= 8;
        }
    }

    fn code(&mut self, code: u32, length: u32) {
        self.put(code.reverse_bits() >> (32 - length), length);
    }

    fn finish(mut self) -> Vec<u8> {
        if self.count > 0 {
            self.out.push(self.pending as u8);
        }
        self.out
    }
}

/// The image bomb of attack 5: a valid PNG of `width` × `height` black,
/// transparent RGBA pixels (every row filter 0, every byte 0), compressed
/// with deflate's fixed codes (one back-reference of 258 bytes per 13 bits),
/// so 10,000 × 10,000 px — 381 MiB decoded — take 2.5 MB.
fn png_bomb(width: u32, height: u32) -> Vec<u8> {
    let raw = u64::from(height) * (1 + 4 * u64::from(width));
    let mut bits = Bits::default();
    bits.put(1, 1); // the final block
    bits.put(1, 2); // fixed Huffman codes
    bits.code(0x30, 8); // literal 0
    let mut left = raw - 1;
    while left >= 258 {
        bits.code(0xC5, 8); // length 258 (code 285)
        bits.code(0, 5); // distance 1
        left -= 258;
    }
    for _ in 0..left {
        bits.code(0x30, 8);
    }
    bits.code(0, 7); // end of block
    let mut zlib = vec![0x78, 0x01];
    zlib.extend(bits.finish());
    // Adler-32 of zeros: a stays 1, b counts the bytes.
    let adler = ((raw % 65521) << 16) as u32 | 1;
    zlib.extend_from_slice(&adler.to_be_bytes());

    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
    png_chunk(&mut png, b"IHDR", &ihdr);
    png_chunk(&mut png, b"IDAT", &zlib);
    png_chunk(&mut png, b"IEND", &[]);
    png
}

fn picture(width: u32, height: u32) -> image::RgbaImage {
    image::RgbaImage::from_fn(width, height, |x, y| {
        image::Rgba([(x % 251) as u8, (y % 241) as u8, 90, 255])
    })
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    picture(width, height)
        .write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
        .unwrap();
    out
}

/// EXIF as a phone writes it: Make, Orientation 1 and a GPS IFD with the
/// latitude (little-endian TIFF).
fn phone_exif() -> Vec<u8> {
    let mut t = b"II\x2a\x00\x08\x00\x00\x00".to_vec();
    let entry = |t: &mut Vec<u8>, tag: u16, kind: u16, count: u32, value: u32| {
        t.extend_from_slice(&tag.to_le_bytes());
        t.extend_from_slice(&kind.to_le_bytes());
        t.extend_from_slice(&count.to_le_bytes());
        t.extend_from_slice(&value.to_le_bytes());
    };
    // IFD0 at 8 (3 entries), Make at 50, GPS IFD at 60, latitude at 90.
    t.extend_from_slice(&3u16.to_le_bytes());
    entry(&mut t, 0x010F, 2, 10, 50);
    entry(&mut t, 0x0112, 3, 1, 1);
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

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A body that notes whether it was ever polled (and would be 6 MiB if it
/// were): proof that a refusal came before reading.
struct Watched(Arc<AtomicBool>);

impl HttpBody for Watched {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        self.0.store(true, Ordering::SeqCst);
        Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from(vec![
            0u8;
            6 * MIB
        ])))))
    }
}

fn watched() -> (Body, Arc<AtomicBool>) {
    let polled = Arc::new(AtomicBool::new(false));
    (Body::new(Watched(polled.clone())), polled)
}

/// Attack 5: a PNG of 2.5 MB whose header declares 10,000 × 10,000 px
/// (381 MiB decoded) is refused from its header, by an owner too; nothing
/// is stored and the organization does not change.
#[tokio::test]
async fn an_image_bomb_is_refused_from_its_header_and_changes_nothing() {
    let s = Setup::new().await;
    let bomb = png_bomb(10_000, 10_000);
    assert!(bomb.len() < 3 * MIB, "{} bytes", bomb.len());
    let before = s.read().await;
    let started = std::time::Instant::now();
    let r = s
        .put(&s.project.secret_key, "image/png", Body::from(bomb))
        .await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "image_too_large");
    let detail = r.body["detail"].as_str().unwrap();
    assert!(
        detail.contains("10000 × 10000") && detail.contains("4096"),
        "{detail}"
    );
    // Decoding 381 MiB takes seconds; reading a header does not.
    assert!(started.elapsed().as_secs() < 3, "{:?}", started.elapsed());
    assert!(s.objects().await.is_empty(), "nothing is stored");
    let after = s.read().await;
    assert_eq!(after.headers["etag"], before.headers["etag"]);
    assert_eq!(after.body.get("logo_url"), None);
}

#[tokio::test]
async fn sides_over_4096_px_are_refused_and_4096_are_not() {
    let s = Setup::new().await;
    let key = s.project.secret_key.clone();
    for (width, height) in [(4097, 1), (1, 4097)] {
        let r = s
            .put(&key, "image/png", Body::from(png(width, height)))
            .await;
        assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "image_too_large");
        assert!(s.objects().await.is_empty());
    }
    let r = s.put(&key, "image/png", Body::from(png(4096, 1))).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(s.objects().await.len(), 2);
}

#[tokio::test]
async fn gif_is_not_a_logo() {
    let s = Setup::new().await;
    let gif = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;";
    for label in ["image/gif", "application/octet-stream"] {
        let r = s
            .put(&s.project.secret_key, label, Body::from(gif.to_vec()))
            .await;
        assert_problem(
            &r,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        );
        assert!(
            r.body["detail"].as_str().unwrap().contains("GIF"),
            "{:?}",
            r.body
        );
    }
    assert!(s.objects().await.is_empty());
}

/// The 5 MiB cap answers a problem document whether the size is declared
/// (`Content-Length`) or only found while reading, never axum's text/plain.
#[tokio::test]
async fn bodies_over_5_mib_are_413_problem_documents() {
    let s = Setup::new().await;
    let mut over = png(8, 8);
    over.resize(5 * MIB + 1, 0);
    let declared = Request::builder()
        .method(Method::PUT)
        .uri(s.path())
        .header("authorization", format!("Bearer {}", s.project.secret_key))
        .header("content-type", "image/png")
        .header("content-length", over.len())
        .body(Body::from(over.clone()))
        .unwrap();
    let r = send(&s.tenant, declared).await;
    assert_problem(&r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    let r = s
        .put(&s.project.secret_key, "image/png", Body::from(over))
        .await;
    assert_problem(&r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    let mut far_over = png(8, 8);
    far_over.resize(9 * MIB, 0);
    let r = s
        .put(&s.project.secret_key, "image/png", Body::from(far_over))
        .await;
    assert_problem(&r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    assert!(s.objects().await.is_empty());
}

/// Whoever may not change the organization is refused before a byte of
/// the body is read; the owner's body is read (the probe works).
#[tokio::test]
async fn the_body_is_read_only_once_the_caller_may_change_the_organization() {
    let s = Setup::new().await;
    let stranger = session_token(&s.project, "mallory", None);
    let (body, polled) = watched();
    let r = s.put(&stranger, "image/png", body).await;
    assert_problem(&r, StatusCode::NOT_FOUND, "not_found");
    assert!(
        !polled.load(Ordering::SeqCst),
        "a non-member's body was read"
    );

    let (body, polled) = watched();
    let missing = format!("/v2/organization/{}/logo", uuid::Uuid::now_v7());
    let r = s
        .put_to(&missing, &s.project.secret_key, "image/png", body)
        .await;
    assert_problem(&r, StatusCode::NOT_FOUND, "not_found");
    assert!(
        !polled.load(Ordering::SeqCst),
        "read for a missing organization"
    );

    let (body, polled) = watched();
    let r = s.put(&s.project.publishable_key, "image/png", body).await;
    assert!(r.status.is_client_error(), "{:?}", r.body);
    assert!(
        !polled.load(Ordering::SeqCst),
        "a publishable key's body was read"
    );

    let (body, polled) = watched();
    let r = s.put(&s.project.secret_key, "image/png", body).await;
    assert_problem(&r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    assert!(polled.load(Ordering::SeqCst), "the owner's body is read");
    assert!(s.objects().await.is_empty());
}

fn jpeg_segment(out: &mut Vec<u8>, marker: u8, payload: &[u8]) {
    out.extend_from_slice(&[0xFF, marker]);
    out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(payload);
}

fn webp_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(kind);
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    if data.len() % 2 == 1 {
        out.push(0);
    }
}

/// A JPEG from a phone: EXIF with GPS (APP1), an editor's XMP (APP1) and a
/// comment.
fn phone_jpeg() -> Vec<u8> {
    let rgb = image::DynamicImage::ImageRgba8(picture(300, 200)).to_rgb8();
    let mut encoded = Vec::new();
    let mut encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut encoded, 85);
    encoder.set_exif_metadata(phone_exif()).unwrap();
    encoder
        .write_image(&rgb, 300, 200, image::ExtendedColorType::Rgb8)
        .unwrap();
    let mut sent = encoded[..2].to_vec();
    let mut xmp = b"http://ns.adobe.com/xap/1.0/\0".to_vec();
    xmp.extend_from_slice(XMP);
    jpeg_segment(&mut sent, 0xE1, &xmp);
    jpeg_segment(&mut sent, 0xFE, b"taken at home with SecretCam");
    sent.extend_from_slice(&encoded[2..]);
    sent
}

/// A PNG with an eXIf chunk (GPS) and an iTXt chunk holding XMP.
fn edited_png() -> Vec<u8> {
    let mut encoded = Vec::new();
    let mut encoder = image::codecs::png::PngEncoder::new(&mut encoded);
    encoder.set_exif_metadata(phone_exif()).unwrap();
    encoder
        .write_image(
            &picture(200, 300),
            200,
            300,
            image::ExtendedColorType::Rgba8,
        )
        .unwrap();
    // After the signature (8) and IHDR (25).
    let mut sent = encoded[..33].to_vec();
    let mut itxt = b"XML:com.adobe.xmp\0\0\0\0\0".to_vec();
    itxt.extend_from_slice(XMP);
    png_chunk(&mut sent, b"iTXt", &itxt);
    sent.extend_from_slice(&encoded[33..]);
    sent
}

/// A WebP with an EXIF chunk (GPS) and an XMP chunk, flagged in VP8X.
fn edited_webp() -> Vec<u8> {
    let mut sent = Vec::new();
    let mut encoder = image::codecs::webp::WebPEncoder::new_lossless(&mut sent);
    encoder.set_exif_metadata(phone_exif()).unwrap();
    encoder
        .write_image(&picture(64, 48), 64, 48, image::ExtendedColorType::Rgba8)
        .unwrap();
    webp_chunk(&mut sent, b"XMP ", XMP);
    let riff = (sent.len() - 8) as u32;
    sent[4..8].copy_from_slice(&riff.to_le_bytes());
    assert_eq!(&sent[12..16], b"VP8X");
    sent[20] |= 0x04;
    sent
}

/// PNG, JPEG and WebP as a phone or an editor leaves them are stored
/// without EXIF (GPS included), XMP and comments, and still decode at
/// their size; the owner's session uploads one.
#[tokio::test]
async fn stored_logos_carry_no_metadata() {
    let s = Setup::new().await;
    let accounts = accounts::router(s.state.clone());
    let ann = session_token(&s.project, "ann", None);
    let made = call(
        &accounts,
        Method::POST,
        "/v1/organizations",
        Some(&ann),
        Some(r#"{"name": "Ann's"}"#),
    )
    .await;
    assert!(made.status.is_success(), "{:?}", made.body);
    let anns = Setup {
        state: s.state.clone(),
        project: s.project.clone(),
        tenant: s.tenant.clone(),
        org: made.body["id"].as_str().unwrap().to_owned(),
    };

    let cases = [
        (&anns, &ann, "image/jpeg", phone_jpeg(), (300, 200)),
        (
            &s,
            &s.project.secret_key,
            "image/png",
            edited_png(),
            (200, 300),
        ),
        (
            &s,
            &s.project.secret_key,
            "image/webp",
            edited_webp(),
            (64, 48),
        ),
    ];
    for (setup, credential, content_type, sent, size) in cases {
        assert!(contains(&sent, b"SecretCam") && contains(&sent, b"xmpmeta"));
        let r = setup.put(credential, content_type, Body::from(sent)).await;
        assert_eq!(r.status, StatusCode::OK, "{content_type}: {:?}", r.body);
        assert!(r.body["logo_url"].is_string());
        let (stored_type, stored) = setup.original().await;
        assert_eq!(stored_type, content_type);
        for secret in [
            &b"SecretCam"[..],
            b"xmpmeta",
            b"GPSLatitude",
            b"Exif\0\0",
            b"eXIf",
            b"iTXt",
            b"EXIF",
            b"XMP ",
        ] {
            assert!(
                !contains(&stored, secret),
                "{content_type} still holds {:?}",
                String::from_utf8_lossy(secret)
            );
        }
        let decoded = image::load_from_memory(&stored).expect("the stored logo decodes");
        assert_eq!((decoded.width(), decoded.height()), size, "{content_type}");
        assert_eq!(setup.objects().await.len(), 2, "with its thumbnail");
    }
    let webp = s.original().await.1;
    assert_eq!(webp[20] & 0x0C, 0, "VP8X no longer announces EXIF or XMP");
    let read: Value = s.read().await.body;
    assert!(read["logo_thumbnail_url"].is_string());
}
