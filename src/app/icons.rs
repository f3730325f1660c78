//! icons: the five tray icons, embedded in the binary (`include_bytes!`), so
//! an installed `mirrortray` needs no files beside it. They are drawn by
//! `icons/make_icons.py` at 16, 22, 24 and 32 px, each size drawn for
//! itself (legible on light and dark panels).
//!
//! Panels ask for the size they show. So that they get the one drawn for
//! it rather than a scaled 32 px one, the icons are written out as a small
//! icon theme ([`Theme`]: `hicolor/NxN/apps/mirrortray-LOOK.png`) that the
//! tray names them from. Where that cannot be written, the 32 px icon is
//! handed over as pixels ([`rgba`]).

use super::status::Look;

/// Each look's icon at each size it is drawn at: (size, PNG).
fn pngs(look: Look) -> [(u32, &'static [u8]); 4] {
    macro_rules! sizes {
        ($name:literal) => {
            [
                (
                    16,
                    include_bytes!(concat!("../../icons/", $name, "-16.png")).as_slice(),
                ),
                (
                    22,
                    include_bytes!(concat!("../../icons/", $name, "-22.png")).as_slice(),
                ),
                (
                    24,
                    include_bytes!(concat!("../../icons/", $name, "-24.png")).as_slice(),
                ),
                (
                    32,
                    include_bytes!(concat!("../../icons/", $name, ".png")).as_slice(),
                ),
            ]
        };
    }
    match look {
        Look::Idle => sizes!("idle"),
        Look::Busy => sizes!("busy"),
        Look::Paused => sizes!("paused"),
        Look::Error => sizes!("error"),
        Look::Setup => sizes!("setup"),
    }
}

const LOOKS: [Look; 5] = [
    Look::Idle,
    Look::Busy,
    Look::Paused,
    Look::Error,
    Look::Setup,
];

/// The tray's icons as an icon theme in a folder of this process's own,
/// removed when dropped.
pub struct Theme {
    dir: std::path::PathBuf,
}

impl Theme {
    /// Writes the theme into `dir` (made, or emptied first).
    pub fn write(dir: std::path::PathBuf) -> std::io::Result<Theme> {
        let _ = std::fs::remove_dir_all(&dir);
        let theme = Theme { dir };
        let hicolor = theme.dir.join("hicolor");
        let mut dirs = Vec::new();
        for look in LOOKS {
            for (size, png) in pngs(look) {
                let sub = format!("{size}x{size}/apps");
                std::fs::create_dir_all(hicolor.join(&sub))?;
                std::fs::write(hicolor.join(&sub).join(format!("{}.png", name(look))), png)?;
                if size == 32 {
                    // Beside the theme too: hosts that only look there.
                    std::fs::write(theme.dir.join(format!("{}.png", name(look))), png)?;
                }
                if !dirs.contains(&(size, sub.clone())) {
                    dirs.push((size, sub));
                }
            }
        }
        let mut index = format!(
            "[Icon Theme]\nName=Hicolor\nComment=mirrortray's tray icons\nDirectories={}\n",
            dirs.iter()
                .map(|(_, d)| d.as_str())
                .collect::<Vec<_>>()
                .join(",")
        );
        for (size, d) in &dirs {
            index.push_str(&format!(
                "\n[{d}]\nSize={size}\nContext=Applications\nType=Fixed\n"
            ));
        }
        std::fs::write(hicolor.join("index.theme"), index)?;
        Ok(theme)
    }

    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }
}

impl Drop for Theme {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The icon name of `look` in the [`Theme`].
pub fn name(look: Look) -> String {
    let l = match look {
        Look::Idle => "idle",
        Look::Busy => "busy",
        Look::Paused => "paused",
        Look::Error => "error",
        Look::Setup => "setup",
    };
    format!("mirrortray-{l}")
}

/// An icon as RGBA pixels.
pub struct Rgba {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

fn png_of(look: Look) -> &'static [u8] {
    pngs(look)[3].1
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
    fn each_size_is_drawn_at_its_size_and_the_theme_holds_them() {
        for look in LOOKS {
            for (size, png) in pngs(look) {
                let i = decode(png).unwrap();
                assert_eq!((i.width, i.height), (size, size), "{look:?}");
            }
        }
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("theme");
        let theme = Theme::write(dir.clone()).unwrap();
        for size in [16, 22, 24, 32] {
            let p = dir.join(format!("hicolor/{size}x{size}/apps/mirrortray-setup.png"));
            assert_eq!(decode(&std::fs::read(&p).unwrap()).unwrap().width, size);
        }
        let index = std::fs::read_to_string(dir.join("hicolor/index.theme")).unwrap();
        assert!(
            index.contains("Directories=16x16/apps,22x22/apps,24x24/apps,32x32/apps"),
            "{index}"
        );
        assert!(dir.join("mirrortray-idle.png").is_file());
        drop(theme);
        assert!(!dir.exists());
    }

    #[test]
    fn icons_differ() {
        let a = rgba(Look::Idle).unwrap().pixels;
        let b = rgba(Look::Error).unwrap().pixels;
        assert_ne!(a, b);
    }
}
