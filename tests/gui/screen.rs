//! Pictures of the app's window taken from the X server, not from WebDriver: the test's Xvfb
//! holds the window's pixels, `GetImage` reads them (x11rb) and the `png` crate encodes them.
//!
//! Why not WebDriver's screenshot: WebKitWebDriver's answer never came after a view switch or
//! with a terminal open, and the session's next request then hung (docs/dev/gui.md). Reading the
//! X server involves neither the webview nor the driver, so a picture cannot stall the test.

use x11rb::connection::Connection;
use x11rb::protocol::xproto::{AtomEnum, ConnectionExt, ImageFormat, MapState, Window};

/// A window picture failed; the message says at which step.
#[derive(Debug)]
pub(crate) struct CaptureError(String);

impl std::fmt::Display for CaptureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn fail(step: &str) -> impl FnOnce(String) -> CaptureError + '_ {
    move |e| CaptureError(format!("{step}: {e}"))
}

/// PNG bytes of the biggest viewable top-level window titled `title` on display `:n`.
pub(crate) fn capture_window(display: u32, title: &str) -> Result<Vec<u8>, CaptureError> {
    let (conn, screen) =
        x11rb::connect(Some(&format!(":{display}"))).map_err(|e| fail("connect")(e.to_string()))?;
    let root = conn.setup().roots[screen].root;
    let window = find_window(&conn, root, title)?;
    let geo = conn
        .get_geometry(window)
        .map_err(|e| fail("geometry")(e.to_string()))?
        .reply()
        .map_err(|e| fail("geometry")(e.to_string()))?;
    let image = conn
        .get_image(
            ImageFormat::Z_PIXMAP,
            window,
            0,
            0,
            geo.width,
            geo.height,
            !0,
        )
        .map_err(|e| fail("get image")(e.to_string()))?
        .reply()
        .map_err(|e| fail("get image")(e.to_string()))?;
    let bpp = conn
        .setup()
        .pixmap_formats
        .iter()
        .find(|f| f.depth == image.depth)
        .map_or(32, |f| f.bits_per_pixel);
    if bpp != 32 {
        return Err(CaptureError(format!(
            "{bpp} bits per pixel: only 32 is read"
        )));
    }
    let rgb = bgrx_to_rgb(&image.data);
    encode_png(u32::from(geo.width), u32::from(geo.height), &rgb)
}

/// The largest mapped child of `root` whose `WM_NAME` is `title` (Xvfb has no window manager,
/// so the app's window is a direct child of the root).
fn find_window(conn: &impl Connection, root: Window, title: &str) -> Result<Window, CaptureError> {
    let tree = conn
        .query_tree(root)
        .map_err(|e| fail("query tree")(e.to_string()))?
        .reply()
        .map_err(|e| fail("query tree")(e.to_string()))?;
    let mut best: Option<(u32, Window)> = None;
    for w in tree.children {
        let viewable = conn
            .get_window_attributes(w)
            .ok()
            .and_then(|c| c.reply().ok())
            .is_some_and(|a| a.map_state == MapState::VIEWABLE);
        if !viewable || window_name(conn, w).as_deref() != Some(title) {
            continue;
        }
        let Some(geo) = conn.get_geometry(w).ok().and_then(|c| c.reply().ok()) else {
            continue;
        };
        let area = u32::from(geo.width) * u32::from(geo.height);
        if best.is_none_or(|(a, _)| area > a) {
            best = Some((area, w));
        }
    }
    best.map(|(_, w)| w)
        .ok_or_else(|| CaptureError(format!("no viewable window titled {title:?}")))
}

fn window_name(conn: &impl Connection, w: Window) -> Option<String> {
    let reply = conn
        .get_property(false, w, AtomEnum::WM_NAME, AtomEnum::ANY, 0, 256)
        .ok()?
        .reply()
        .ok()?;
    String::from_utf8(reply.value).ok()
}

/// X's 32-bit little-endian pixels (blue, green, red, unused) as RGB triples.
fn bgrx_to_rgb(data: &[u8]) -> Vec<u8> {
    data.chunks_exact(4)
        .flat_map(|p| [p[2], p[1], p[0]])
        .collect()
}

fn encode_png(width: u32, height: u32, rgb: &[u8]) -> Result<Vec<u8>, CaptureError> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, width, height);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::High);
    let mut w = enc
        .write_header()
        .map_err(|e| fail("png header")(e.to_string()))?;
    w.write_image_data(rgb)
        .map_err(|e| fail("png data")(e.to_string()))?;
    w.finish().map_err(|e| fail("png end")(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixels_become_rgb_in_order() {
        assert_eq!(
            bgrx_to_rgb(&[1, 2, 3, 0, 4, 5, 6, 255]),
            vec![3, 2, 1, 6, 5, 4]
        );
    }

    #[test]
    fn a_png_round_trips_its_size_and_pixels() {
        let rgb: Vec<u8> = (0..2 * 3 * 3).map(|i| i as u8).collect();
        let png_bytes = encode_png(2, 3, &rgb).expect("encode");
        let dec = png::Decoder::new(std::io::Cursor::new(png_bytes));
        let mut reader = dec.read_info().expect("header");
        let mut buf = vec![0; reader.output_buffer_size().expect("size")];
        let info = reader.next_frame(&mut buf).expect("frame");
        assert_eq!((info.width, info.height), (2, 3));
        assert_eq!(&buf[..info.buffer_size()], &rgb[..]);
    }
}
