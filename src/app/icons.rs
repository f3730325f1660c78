//! icons: the five tray icons, embedded in the binary (`include_bytes!`), so
//! an installed `mirrortray` needs no files beside it. They are drawn by
//! `icons/make_icons.py` (32 px, legible on light and dark panels) and
//! decoded from PNG to RGBA here, once per change of state.

use super::status::Look;

const IDLE: &[u8] = include_bytes!("../../icons/idle.png");
const BUSY: &[u8] = include_bytes!("../../icons/busy.png");
const PAUSED: &[u8] = include_bytes!("../../icons/paused.png");
const ERROR: &[u8] = include_bytes!("../../icons/error.png");
const SETUP: &[u8] = include_bytes!("../../icons/setup.png");

/// An icon as RGBA pixels.
pub struct Rgba {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

fn png_of(look: Look) -> &'static [u8] {
    match look {
        Look::Idle => IDLE,
        Look::Busy => BUSY,
        Look::Paused => PAUSED,
        Look::Error => ERROR,
        Look::Setup => SETUP,
    }
}

/// The icon for `look`, decoded.
pub fn rgba(look: Look) -> Result<Rgba, String> {
    decode(png_of(look)).map_err(|e| format!("the built-in {look:?} icon cannot be decoded: {e}"))
}

/// Decodes a PNG to 8-bit RGBA (palette, grey and 16-bit images expanded).
pub fn decode(bytes: &[u8]) -> Result<Rgba, String> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(
        png::Transformations::normalize_to_color8() | png::Transformations::ALPHA,
    );
    let mut reader = decoder.read_info().map_err(|e| e.to_string())?;
    let size = reader.output_buffer_size().ok_or("image too large")?;
    let mut buf = vec![0; size];
    let info = reader.next_frame(&mut buf).map_err(|e| e.to_string())?;
    buf.truncate(info.buffer_size());
    let pixels = match info.color_type {
        png::ColorType::Rgba => buf,
        png::ColorType::GrayscaleAlpha => buf
            .chunks_exact(2)
            .flat_map(|c| [c[0], c[0], c[0], c[1]])
            .collect(),
        other => return Err(format!("unexpected colour type {other:?} after expansion")),
    };
    Ok(Rgba {
        width: info.width,
        height: info.height,
        pixels,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_icon_decodes_to_32px_rgba() {
        for look in [
            Look::Idle,
            Look::Busy,
            Look::Paused,
            Look::Error,
            Look::Setup,
        ] {
            let i = rgba(look).unwrap();
            assert_eq!((i.width, i.height), (32, 32), "{look:?}");
            assert_eq!(i.pixels.len(), 32 * 32 * 4, "{look:?}");
            // Not blank: some pixels are opaque, some transparent.
            assert!(i.pixels.chunks(4).any(|p| p[3] == 255), "{look:?}");
            assert!(i.pixels.chunks(4).any(|p| p[3] == 0), "{look:?}");
        }
    }

    #[test]
    fn icons_differ() {
        let a = rgba(Look::Idle).unwrap().pixels;
        let b = rgba(Look::Error).unwrap().pixels;
        assert_ne!(a, b);
    }
}
