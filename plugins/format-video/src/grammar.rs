//! The tokens of `container:video:audio:options`. Every part is optional; every unknown
//! item is an error that names it, so a typo never silently becomes a default.

use copra_sdk::Error;

use crate::geometry::{NAMED_HEIGHTS, Size};

/// A format string cut at its colons.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Parts<'a> {
    pub format: &'a str,
    pub container: &'a str,
    pub video: &'a str,
    pub audio: &'a str,
    pub options: &'a str,
}

pub fn split(format: &str) -> Result<Parts<'_>, Error> {
    let parts: Vec<&str> = format.split(':').collect();
    if let Some(extra) = parts.get(4..).filter(|extra| !extra.is_empty()) {
        return Err(Error::format(format!(
            "The format '{format}' has too many parts ('{}'): the form is container:video:audio:options.",
            extra.join(":")
        )));
    }
    let part = |i: usize| parts.get(i).copied().unwrap_or("");
    Ok(Parts { format, container: part(0), video: part(1), audio: part(2), options: part(3) })
}

impl Parts<'_> {
    /// Refuse a part this kind of output has no use for.
    pub fn refuse(&self, part: &str, what: &str, why: &str) -> Result<(), Error> {
        if part.is_empty() {
            return Ok(());
        }
        Err(Error::format(format!("The {what} part '{part}' of format '{}' is not allowed: {why}", self.format)))
    }
}

/// The `_`-separated items of a part; empty items (`720p__30fps`) are skipped.
pub fn items(part: &str) -> impl Iterator<Item = &str> {
    part.split('_').filter(|i| !i.is_empty())
}

/// `3000k` → 3000 (kbit/s), positive.
pub fn kbps(item: &str) -> Option<u32> {
    item.strip_suffix('k').and_then(|n| n.parse().ok()).filter(|&n| n > 0)
}

fn dimension(text: &str) -> Option<u32> {
    text.parse().ok().filter(|&n: &u32| (2..=8192).contains(&n))
}

/// `720p`, `1280x720`, `1280x`, `x720`.
pub fn size(item: &str) -> Option<Size> {
    if let Some(height) = item.strip_suffix('p').and_then(|h| h.parse::<u32>().ok()) {
        return NAMED_HEIGHTS.contains(&height).then_some(Size::Height(height));
    }
    let (w, h) = item.split_once('x')?;
    match (w.is_empty(), h.is_empty()) {
        (false, true) => dimension(w).map(Size::Width),
        (true, false) => dimension(h).map(Size::Height),
        (false, false) => Some(Size::Exact(dimension(w)?, dimension(h)?)),
        (true, true) => None,
    }
}

/// `30fps`, `29.97fps`: `None` when the item is not a frame rate at all, an error when it
/// is one outside `min..=max`.
pub fn fps(item: &str, max: f64, format: &str) -> Option<Result<f64, Error>> {
    let number = item.strip_suffix("fps")?;
    let fps = match number.parse::<f64>() {
        Ok(fps) if fps.is_finite() => fps,
        _ => return Some(Err(Error::format(format!("Unknown video parameter '{item}' in format '{format}'.")))),
    };
    if !(1.0..=max).contains(&fps) {
        return Some(Err(Error::format(format!("The frame rate '{item}' in format '{format}' must be between 1 and {max}."))));
    }
    Some(Ok(fps))
}

/// One entry of the options part: `key=value` or a bare flag.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Opt<'a> {
    pub key: &'a str,
    pub value: Option<&'a str>,
}

impl Opt<'_> {
    /// The value, or an error for a bare key that needs one.
    pub fn value(&self, format: &str) -> Result<&str, Error> {
        self.value.ok_or_else(|| Error::format(format!("The option '{}' in format '{format}' must be key=value.", self.key)))
    }

    /// An error for a value outside what the option takes.
    pub fn bad(&self, format: &str, takes: &str) -> Error {
        let value = self.value.unwrap_or("");
        Error::format(format!("The option '{}={value}' in format '{format}' is not valid: {takes}", self.key))
    }
}

/// The comma-separated options part. A key given twice is an error.
pub fn options<'a>(part: &'a str, format: &str) -> Result<Vec<Opt<'a>>, Error> {
    let mut out: Vec<Opt<'a>> = Vec::new();
    for entry in part.split(',').filter(|o| !o.is_empty()) {
        let opt = match entry.split_once('=') {
            Some((key, value)) => Opt { key, value: Some(value) },
            None => Opt { key: entry, value: None },
        };
        if opt.key.is_empty() {
            return Err(Error::format(format!("The option '{entry}' in format '{format}' has no name.")));
        }
        if out.iter().any(|o| o.key == opt.key) {
            return Err(Error::format(format!("The option '{}' is given twice in format '{format}'.", opt.key)));
        }
        out.push(opt);
    }
    Ok(out)
}

/// Numbers joined for messages: `8000, 16000, 48000`.
pub fn numbers(values: &[u32]) -> String {
    values.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_up_to_four_parts() {
        let p = split("mp4:720p::quality=4").unwrap();
        assert_eq!((p.container, p.video, p.audio, p.options), ("mp4", "720p", "", "quality=4"));
        let p = split("mp4").unwrap();
        assert_eq!((p.container, p.video, p.audio, p.options), ("mp4", "", "", ""));
        let err = split("mp4:720p:::extra:more").unwrap_err();
        assert!(err.message.contains("'extra:more'"), "{}", err.message);
        assert!(split("mp4::::").is_err(), "a fifth part, even empty");
    }

    #[test]
    fn sizes() {
        assert_eq!(size("720p"), Some(Size::Height(720)));
        assert_eq!(size("240p"), Some(Size::Height(240)));
        assert_eq!(size("2160p"), Some(Size::Height(2160)));
        assert_eq!(size("700p"), None);
        assert_eq!(size("1280x"), Some(Size::Width(1280)));
        assert_eq!(size("x540"), Some(Size::Height(540)));
        assert_eq!(size("300x300"), Some(Size::Exact(300, 300)));
        for bad in ["x", "1x100", "100x1", "9000x", "axb", "-2x", "1280x720x1", "12.5x"] {
            assert_eq!(size(bad), None, "{bad}");
        }
    }

    #[test]
    fn rates() {
        assert_eq!(kbps("3000k"), Some(3000));
        assert_eq!(kbps("0k"), None);
        assert_eq!(kbps("3M"), None);
        assert_eq!(kbps("k"), None);
        assert!(matches!(fps("29.97fps", 240.0, "f"), Some(Ok(x)) if (x - 29.97).abs() < 1e-9));
        assert!(matches!(fps("241fps", 240.0, "f"), Some(Err(_))));
        assert!(matches!(fps("0.5fps", 240.0, "f"), Some(Err(_))));
        assert!(matches!(fps("NaNfps", 240.0, "f"), Some(Err(_))));
        assert!(matches!(fps("infps", 240.0, "f"), Some(Err(_))));
        assert!(fps("720p", 240.0, "f").is_none());
    }

    #[test]
    fn option_lists() {
        let opts = options("quality=4,force_sdr,,maxrate=1000k", "f").unwrap();
        assert_eq!(
            opts,
            [Opt { key: "quality", value: Some("4") }, Opt { key: "force_sdr", value: None }, Opt { key: "maxrate", value: Some("1000k") }]
        );
        assert!(options("quality=4,quality=5", "f").unwrap_err().message.contains("twice"));
        assert!(options("=4", "f").is_err());
        assert!(Opt { key: "gop", value: None }.value("f").unwrap_err().message.contains("key=value"));
    }
}
