//! Screenshot upload checks: type from the bytes, dimensions before decoding, bounded decode.
//!
//! A 470 KB PNG can declare 11000×11000 pixels and take 462 MiB to decode (security.md §5), so
//! the header is read first and anything over the limits is refused before any pixel is
//! allocated. The client's file name and `Content-Type` are never trusted.

use std::io::Cursor;

use image::{ImageFormat, ImageReader, Limits};

use crate::CoreError;

/// Largest accepted upload, in bytes.
pub const MAX_UPLOAD_BYTES: usize = 25 * 1024 * 1024;
/// Longest accepted side, in pixels (three 4K monitors side by side still fit).
pub const MAX_SIDE: u32 = 16_384;
/// Most pixels accepted in one image (≈ 200 MiB as RGBA).
pub const MAX_PIXELS: u64 = 50_000_000;
/// Allocation cap handed to the decoder as a second line of defence.
const MAX_ALLOC: u64 = 256 * 1024 * 1024;

/// An image that passed every check, with the facts the store records.
#[derive(Debug, Clone)]
pub struct ValidImage {
    /// The bytes as uploaded.
    pub bytes: Vec<u8>,
    /// Extension for the stored file.
    pub ext: &'static str,
    /// MIME type from the sniffed format.
    pub mime: &'static str,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Perceptual fingerprint from the one decode (see [`fingerprint`]).
    pub thumb: Vec<u8>,
}

/// Checks `bytes` is a PNG, JPEG or WebP image within the limits and decodes it once to be sure.
/// Blocking (decodes): call from a blocking thread.
pub fn validate_image(bytes: Vec<u8>) -> Result<ValidImage, CoreError> {
    if bytes.is_empty() {
        return Err(CoreError::Invalid("the uploaded file is empty".into()));
    }
    if bytes.len() > MAX_UPLOAD_BYTES {
        return Err(CoreError::TooLarge(format!(
            "the file is {} bytes; the limit is {MAX_UPLOAD_BYTES} bytes (25 MiB)",
            bytes.len()
        )));
    }
    let format = image::guess_format(&bytes).ok();
    let (ext, mime) = match format {
        Some(ImageFormat::Png) => ("png", "image/png"),
        Some(ImageFormat::Jpeg) => ("jpg", "image/jpeg"),
        Some(ImageFormat::WebP) => ("webp", "image/webp"),
        Some(other) => {
            return Err(CoreError::UnsupportedMedia(format!(
                "{other:?} images are not accepted; upload a PNG, JPEG or WebP screenshot"
            )))
        }
        None => {
            return Err(CoreError::UnsupportedMedia(
                "the file is not an image (its bytes are not PNG, JPEG or WebP)".into(),
            ))
        }
    };
    let format = format.expect("matched above");
    let reader = || {
        let mut r = ImageReader::with_format(Cursor::new(&bytes[..]), format);
        let mut limits = Limits::default();
        limits.max_image_width = Some(MAX_SIDE);
        limits.max_image_height = Some(MAX_SIDE);
        limits.max_alloc = Some(MAX_ALLOC);
        r.limits(limits);
        r
    };
    let (width, height) = reader().into_dimensions().map_err(|e| decode_error(&e))?;
    check_dimensions(width, height)?;
    let decoded = reader().decode().map_err(|e| decode_error(&e))?;
    let thumb = fingerprint(&decoded);
    drop(decoded);
    Ok(ValidImage {
        thumb,
        bytes,
        ext,
        mime,
        width,
        height,
    })
}

fn check_dimensions(width: u32, height: u32) -> Result<(), CoreError> {
    if width == 0 || height == 0 {
        return Err(CoreError::Invalid(format!(
            "the image is {width}×{height} pixels"
        )));
    }
    if width > MAX_SIDE || height > MAX_SIDE || u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(CoreError::TooLarge(format!(
            "the image is {width}×{height} pixels; the limit is {MAX_SIDE} pixels a side and {MAX_PIXELS} pixels in all"
        )));
    }
    Ok(())
}

fn decode_error(e: &image::ImageError) -> CoreError {
    match e {
        image::ImageError::Limits(_) => CoreError::TooLarge(format!(
            "the image exceeds the decoding limits ({MAX_SIDE} pixels a side, {MAX_PIXELS} pixels): {e}"
        )),
        _ => CoreError::UnsupportedMedia(format!("the image could not be decoded: {e}")),
    }
}

/// Side of the fingerprint thumbnail.
pub const THUMB_SIDE: u32 = 32;

/// The perceptual fingerprint of a decoded image: its 32×32 grey thumbnail, row by row, made
/// from the one decode an upload already does (the similar-incidents ranking compares them).
pub fn fingerprint(img: &image::DynamicImage) -> Vec<u8> {
    let grey = img.to_luma8();
    image::imageops::resize(
        &grey,
        THUMB_SIDE,
        THUMB_SIDE,
        image::imageops::FilterType::Triangle,
    )
    .into_raw()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_pixel(w, h, image::Rgb([10, 20, 30]));
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, ImageFormat::Png).unwrap();
        out.into_inner()
    }

    #[test]
    fn accepts_png_and_reports_size() {
        let v = validate_image(png(64, 32)).unwrap();
        assert_eq!(
            (v.width, v.height, v.mime, v.ext),
            (64, 32, "image/png", "png")
        );
    }

    #[test]
    fn refuses_text_and_truncated_images() {
        assert!(matches!(
            validate_image(b"hello, world".to_vec()),
            Err(CoreError::UnsupportedMedia(_))
        ));
        let mut p = png(64, 64);
        p.truncate(p.len() / 2);
        assert!(matches!(
            validate_image(p),
            Err(CoreError::UnsupportedMedia(_))
        ));
    }
}
