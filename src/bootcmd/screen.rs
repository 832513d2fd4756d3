//! kiln's screen waits in the boot command: `<waitFor "TEXT">` and `<waitStill>`.
//!
//! In VGA text mode the screen's text is read exactly: QMP `pmemsave` copies the first text page
//! (80×25 cells at physical address `0xB8000`, where BIOS boot loaders such as isolinux and
//! GRUB draw) and the character bytes are compared with the text. In a graphics mode that window
//! reads as `0xFF` and no text can be read; `<waitStill>` works in every mode: it compares
//! screenshots (QMP `screendump`) until fewer than [`STILL_PIXELS`] of the pixels change for the
//! quiet period, so a blinking cursor does not count as a change.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Error;
use crate::builder::qemu::qmp::{self, Qmp};

/// Physical address of the VGA color text buffer.
const TEXT_BASE: u64 = 0xB8000;
/// Columns and rows of the text page read.
const COLUMNS: usize = 80;
const ROWS: usize = 25;
/// How often the screen is looked at while waiting.
const POLL: Duration = Duration::from_millis(100);
/// The share of pixels that may change between two looks while the screen counts as still
/// (a blinking cursor is well below it).
pub const STILL_PIXELS: f64 = 0.001;

/// Why the screen could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ScreenError {
    #[error("QMP")]
    Qmp(#[from] qmp::Error),
    #[error("Cannot read `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{}` is not a PPM screenshot", path.display())]
    Ppm { path: PathBuf },
}

/// A picture of the screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub width: u32,
    pub height: u32,
    /// RGB, row by row.
    pub pixels: Vec<u8>,
}

/// The guest's screen as the boot command waits see it.
#[async_trait::async_trait]
pub trait Screen: Send {
    /// The text of a text-mode screen, rows joined with `\n`; `None` in a graphics mode.
    async fn text(&mut self) -> Result<Option<String>, ScreenError>;
    /// A picture of the screen.
    async fn frame(&mut self) -> Result<Frame, ScreenError>;
    /// Saves the screen for an error message; where it went.
    async fn screenshot(&mut self) -> Option<PathBuf>;
}

/// Waits until `text` is on the screen (within a row, or across the end of a row).
pub async fn wait_for_text(
    screen: &mut dyn Screen,
    text: &str,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<(), Error> {
    let start = Instant::now();
    let mut graphics = true;
    loop {
        if let Some(screen_text) = screen.text().await.map_err(Error::ReadScreen)? {
            graphics = false;
            if contains(&screen_text, text) {
                tracing::debug!(text, waited = ?start.elapsed(), "found on the screen");
                return Ok(());
            }
        }
        if start.elapsed() >= timeout {
            return Err(Error::ScreenTimeout {
                text: text.to_owned(),
                waited: timeout,
                graphics,
                screenshot: screen.screenshot().await,
            });
        }
        super::pause(POLL, cancel).await?;
    }
}

/// Waits until the screen has stayed still for `quiet`.
pub async fn wait_still(
    screen: &mut dyn Screen,
    quiet: Duration,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<(), Error> {
    let start = Instant::now();
    let mut last = screen.frame().await.map_err(Error::ReadScreen)?;
    let mut still_since = Instant::now();
    loop {
        if still_since.elapsed() >= quiet {
            return Ok(());
        }
        if start.elapsed() >= timeout {
            return Err(Error::StillTimeout {
                waited: timeout,
                screenshot: screen.screenshot().await,
            });
        }
        super::pause(POLL, cancel).await?;
        let now = screen.frame().await.map_err(Error::ReadScreen)?;
        if changed(&last, &now) {
            still_since = Instant::now();
        }
        last = now;
    }
}

/// Whether `text` is on the screen: in one row, or running on from the end of one row into the
/// next (long lines wrap).
pub fn contains(screen: &str, text: &str) -> bool {
    screen.lines().any(|row| row.contains(text)) || screen.replace('\n', "").contains(text)
}

/// Whether more than [`STILL_PIXELS`] of the pixels differ (or the mode changed).
pub fn changed(a: &Frame, b: &Frame) -> bool {
    if (a.width, a.height) != (b.width, b.height) || a.pixels.len() != b.pixels.len() {
        return true;
    }
    let differing = a
        .pixels
        .chunks(3)
        .zip(b.pixels.chunks(3))
        .filter(|(x, y)| x != y)
        .count();
    let total = (a.pixels.len() / 3).max(1);
    differing as f64 / total as f64 > STILL_PIXELS
}

/// The text of a VGA text page (character and attribute bytes interleaved); `None` when the
/// page reads as all `0xFF` (the window is not mapped: a graphics mode). Characters outside
/// printable ASCII (CP437 line drawing) read as spaces; trailing spaces are dropped.
pub fn text_page(bytes: &[u8]) -> Option<String> {
    if bytes.is_empty() || bytes.iter().all(|&b| b == 0xFF) {
        return None;
    }
    let rows: Vec<String> = bytes
        .chunks(COLUMNS * 2)
        .map(|row| {
            let line: String = row
                .chunks(2)
                .map(|cell| match cell[0] {
                    c @ 0x20..=0x7E => c as char,
                    _ => ' ',
                })
                .collect();
            line.trim_end().to_owned()
        })
        .collect();
    Some(rows.join("\n"))
}

/// Parses a binary PPM (`P6`, maxval 255), as QEMU's `screendump` writes it.
pub fn parse_ppm(data: &[u8]) -> Option<Frame> {
    let mut fields = Vec::new();
    let mut at = 0;
    while fields.len() < 4 {
        while at < data.len() && data[at].is_ascii_whitespace() {
            at += 1;
        }
        let start = at;
        while at < data.len() && !data[at].is_ascii_whitespace() {
            at += 1;
        }
        if start == at {
            return None;
        }
        fields.push(std::str::from_utf8(&data[start..at]).ok()?.to_owned());
    }
    at += 1; // the single whitespace after maxval
    if fields[0] != "P6" || fields[3] != "255" {
        return None;
    }
    let (width, height): (u32, u32) = (fields[1].parse().ok()?, fields[2].parse().ok()?);
    let len = width as usize * height as usize * 3;
    let pixels = data.get(at..at + len)?.to_vec();
    Some(Frame {
        width,
        height,
        pixels,
    })
}

/// The screen of a QEMU guest, read over QMP into files in a private temporary directory.
pub struct QmpScreen<'a> {
    qmp: &'a Qmp,
    dir: tempfile::TempDir,
    /// Where a screenshot for an error goes (relative: the working directory).
    shot: PathBuf,
}

impl<'a> QmpScreen<'a> {
    /// A screen read through `qmp`; error screenshots are saved as `shot`.
    pub fn new(qmp: &'a Qmp, shot: PathBuf) -> std::io::Result<Self> {
        let dir = tempfile::Builder::new().prefix("kiln-screen-").tempdir()?;
        Ok(QmpScreen { qmp, dir, shot })
    }

    fn read(path: &Path) -> Result<Vec<u8>, ScreenError> {
        std::fs::read(path).map_err(|source| ScreenError::Read {
            path: path.to_owned(),
            source,
        })
    }
}

#[async_trait::async_trait]
impl Screen for QmpScreen<'_> {
    async fn text(&mut self) -> Result<Option<String>, ScreenError> {
        let path = self.dir.path().join("text");
        let args = json!({
            "val": TEXT_BASE,
            "size": COLUMNS * ROWS * 2,
            "filename": path.to_string_lossy(),
        });
        self.qmp.execute("pmemsave", Some(args)).await?;
        Ok(text_page(&Self::read(&path)?))
    }

    async fn frame(&mut self) -> Result<Frame, ScreenError> {
        let path = self.dir.path().join("frame.ppm");
        let args = json!({ "filename": path.to_string_lossy() });
        self.qmp.execute("screendump", Some(args)).await?;
        let data = Self::read(&path)?;
        parse_ppm(&data).ok_or(ScreenError::Ppm { path })
    }

    async fn screenshot(&mut self) -> Option<PathBuf> {
        let abs = std::path::absolute(&self.shot).ok()?;
        let args = json!({"filename": abs.to_string_lossy(), "format": "png"});
        match self.qmp.execute("screendump", Some(args)).await {
            Ok(_) => Some(abs),
            Err(e) => {
                tracing::debug!(error = %e, "no screenshot");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(rows: &[&str]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for r in 0..ROWS {
            let text = rows.get(r).copied().unwrap_or("");
            for c in 0..COLUMNS {
                bytes.push(text.as_bytes().get(c).copied().unwrap_or(b' '));
                bytes.push(0x07);
            }
        }
        bytes
    }

    #[test]
    fn text_page_reads_characters_and_skips_attributes() {
        let text = text_page(&page(&["ISOLINUX 6.04", "boot: "])).unwrap();
        assert_eq!(
            text.lines().take(2).collect::<Vec<_>>(),
            ["ISOLINUX 6.04", "boot:"]
        );
        assert_eq!(text.split('\n').count(), ROWS);
        assert!(contains(&text, "boot:"));
        assert!(!contains(&text, "login:"));
        let mut drawn = page(&["a"]);
        drawn[2] = 0xC4; // CP437 line drawing reads as a space
        assert_eq!(text_page(&drawn).unwrap().lines().next(), Some("a"));
        assert_eq!(text_page(&[0xFF; 4000]), None, "graphics mode");
    }

    #[test]
    fn text_wrapping_at_the_row_end_is_found() {
        let long = "x".repeat(76) + "boot";
        let text = text_page(&page(&[&long, ": now"])).unwrap();
        assert!(contains(&text, "boot: now"));
    }

    #[test]
    fn ppm_and_stillness() {
        let mut ppm = b"P6\n4 2\n255\n".to_vec();
        ppm.extend(vec![10u8; 4 * 2 * 3]);
        let a = parse_ppm(&ppm).unwrap();
        assert_eq!((a.width, a.height, a.pixels.len()), (4, 2, 24));
        assert!(parse_ppm(b"P5\n1 1\n255\n\0").is_none());
        assert!(parse_ppm(b"P6\n4 2\n255\n\0").is_none(), "short");
        assert!(!changed(&a, &a.clone()));
        let mut b = a.clone();
        b.pixels[0] = 11;
        assert!(changed(&a, &b), "1 of 8 pixels is above the threshold");
        // One pixel of a 1024x768 screen (a cursor blink) is below it.
        let big = Frame {
            width: 1024,
            height: 768,
            pixels: vec![0; 1024 * 768 * 3],
        };
        let mut blink = big.clone();
        blink.pixels[..8 * 3].fill(255);
        assert!(!changed(&big, &blink));
    }

    /// A screen whose text appears after some looks, or never.
    struct Scripted {
        looks: u32,
        appears_at: Option<u32>,
        shots: u32,
    }

    #[async_trait::async_trait]
    impl Screen for Scripted {
        async fn text(&mut self) -> Result<Option<String>, ScreenError> {
            self.looks += 1;
            Ok(Some(match self.appears_at {
                Some(n) if self.looks >= n => "SYSLINUX\nboot:".to_owned(),
                _ => "SeaBIOS".to_owned(),
            }))
        }
        async fn frame(&mut self) -> Result<Frame, ScreenError> {
            self.looks += 1;
            let v = if self.looks < 5 { self.looks as u8 } else { 0 };
            Ok(Frame {
                width: 1,
                height: 1,
                pixels: vec![v; 3],
            })
        }
        async fn screenshot(&mut self) -> Option<PathBuf> {
            self.shots += 1;
            Some(PathBuf::from("/w/kiln-t-waitfor-timeout.png"))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn wait_for_text_returns_when_it_appears_and_times_out_with_a_screenshot() {
        let cancel = CancellationToken::new();
        let mut s = Scripted {
            looks: 0,
            appears_at: Some(3),
            shots: 0,
        };
        wait_for_text(&mut s, "boot:", Duration::from_secs(5), &cancel)
            .await
            .unwrap();
        assert_eq!(s.looks, 3);

        let mut never = Scripted {
            looks: 0,
            appears_at: None,
            shots: 0,
        };
        let err = wait_for_text(&mut never, "boot:", Duration::from_secs(2), &cancel)
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("\"boot:\"") && msg.contains("2s"), "{msg}");
        assert!(msg.contains("kiln-t-waitfor-timeout.png"), "{msg}");
        assert_eq!(never.shots, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn wait_still_waits_for_the_quiet_period() {
        let cancel = CancellationToken::new();
        let mut s = Scripted {
            looks: 0,
            appears_at: None,
            shots: 0,
        };
        let start = Instant::now();
        wait_still(
            &mut s,
            Duration::from_secs(1),
            Duration::from_secs(60),
            &cancel,
        )
        .await
        .unwrap();
        // Changes until the 5th look (0.4 s), then 1 s of quiet.
        let waited = start.elapsed();
        assert!(waited >= Duration::from_millis(1400), "{waited:?}");
        assert!(waited < Duration::from_millis(1700), "{waited:?}");
    }
}
