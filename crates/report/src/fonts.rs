//! The fonts the figures are measured and drawn with. plotters (through
//! `ab_glyph`) needs a font file for both: SVG text is laid out with its
//! metrics, PNG text is rasterised from it. Latin text uses DejaVu Sans;
//! text with Hangul uses Nanum Gothic, which has Latin glyphs as well. Both
//! are read from the system's font directories (Debian's `fonts-dejavu-core`
//! and `fonts-nanum`), or only from `$KIMCNN_FONTS` where it is set; the files' hashes are part of
//! the report's key, since other fonts draw other bytes.

use std::path::PathBuf;
use std::sync::OnceLock;

use plotters::style::FontStyle;

use crate::ReportError;

/// A script the figures can label with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    Latin,
    Hangul,
}

impl Script {
    /// The file, the Debian package that installs it, and the family name
    /// figures ask plotters for.
    fn font(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Script::Latin => ("DejaVuSans.ttf", "fonts-dejavu-core", "sans-serif"),
            Script::Hangul => ("NanumGothic.ttf", "fonts-nanum", "hangul"),
        }
    }

    /// The script a label needs: Hangul if it has a Hangul syllable or jamo.
    pub fn of(text: &str) -> Script {
        let hangul = |c: char| matches!(c as u32, 0xAC00..=0xD7A3 | 0x1100..=0x11FF | 0x3130..=0x318F);
        if text.chars().any(hangul) {
            Script::Hangul
        } else {
            Script::Latin
        }
    }

    /// The plotters family to draw `text` in.
    pub fn family(text: &str) -> &'static str {
        Script::of(text).font().2
    }
}

const DIRS: [&str; 4] =
    ["/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/truetype/nanum", "/usr/share/fonts/TTF", "/usr/local/share/fonts"];

/// Where the script's font file is, if anywhere.
pub fn find(script: Script) -> Option<PathBuf> {
    let (file, _, _) = script.font();
    match std::env::var_os("KIMCNN_FONTS") {
        Some(dir) => Some(PathBuf::from(dir).join(file)).filter(|p| p.is_file()),
        None => DIRS.iter().map(|d| PathBuf::from(d).join(file)).find(|p| p.is_file()),
    }
}

/// BLAKE3 of each font file found, for the report's key.
pub fn fingerprint() -> String {
    [Script::Latin, Script::Hangul]
        .iter()
        .map(|&s| match find(s).and_then(|p| std::fs::read(p).ok()) {
            Some(bytes) => blake3::hash(&bytes).to_hex().to_string(),
            None => "none".into(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Registers the script's font with plotters once per process. A missing
/// font is one line that names the package.
pub fn register(script: Script) -> Result<(), ReportError> {
    static LATIN: OnceLock<Result<(), String>> = OnceLock::new();
    static HANGUL: OnceLock<Result<(), String>> = OnceLock::new();
    let cell = match script {
        Script::Latin => &LATIN,
        Script::Hangul => &HANGUL,
    };
    let (file, package, family) = script.font();
    cell.get_or_init(|| {
        let what = if script == Script::Hangul { "Hangul labels" } else { "labels" };
        let path = find(script).ok_or_else(|| {
            format!(
                "no font for {what}: {file} is in none of {}; install Debian's `{package}` (apt-get install {package})",
                std::env::var("KIMCNN_FONTS").unwrap_or_else(|_| DIRS.join(", "))
            )
        })?;
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        // plotters keeps fonts for the process's lifetime.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font(family, FontStyle::Normal, bytes)
            .map_err(|_| format!("{}: not a font file plotters can read", path.display()))
    })
    .clone()
    .map_err(ReportError::Font)
}

/// Registers the fonts every label in `texts` needs.
pub fn register_for<'a>(texts: impl IntoIterator<Item = &'a str>) -> Result<(), ReportError> {
    register(Script::Latin)?;
    if texts.into_iter().any(|t| Script::of(t) == Script::Hangul) {
        register(Script::Hangul)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_of_labels() {
        assert_eq!(Script::of("non-static"), Script::Latin);
        assert_eq!(Script::of("영화 good"), Script::Hangul);
        assert_eq!(Script::family("ㅋㅋ"), "hangul");
        assert_eq!(Script::family("MR"), "sans-serif");
    }
}
