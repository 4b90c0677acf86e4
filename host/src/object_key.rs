//! The one path normaliser: every object key the host uses for storage I/O, whoever
//! proposed it (a storage plugin, a job), goes through [`object_key`] first.
//!
//! A key is relative to the storage's root and can never leave it: no `..` or `.`
//! segments, no absolute or drive forms, no backslashes, NUL or other control
//! characters, and bounded lengths. Everything else stays literal: `%2e%2e` is a file
//! named `%2e%2e`, not `..`, and look-alike Unicode (`．．`, `∕`) is just text. Nothing is
//! decoded, so nothing can be decoded into an escape later.

/// Longest key, in bytes (S3's own limit).
pub const MAX_KEY_BYTES: usize = 1024;
/// Longest segment between two `/`, in bytes (most filesystems' limit for a name).
pub const MAX_SEGMENT_BYTES: usize = 255;

/// Why a key was refused; the `Display` is a sentence fragment a user can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Nothing is left once the slashes are removed.
    #[error("it names no file (it is empty or only slashes)")]
    Empty,
    /// A `..` or `.` segment: a key never climbs or names a directory itself.
    #[error("it has a '{0}' segment; paths must not climb out of the storage root")]
    DotSegment(&'static str),
    /// A backslash: a path separator on Windows, and never part of a key here.
    #[error("it contains a backslash")]
    Backslash,
    /// NUL or another control character (the code point is given).
    #[error("it contains the control character U+{0:04X}")]
    Control(u32),
    /// A Windows drive (`C:` or `C:foo`) as its first segment.
    #[error("it starts with a drive letter ('{0}:'), an absolute Windows path")]
    Drive(char),
    /// A segment longer than [`MAX_SEGMENT_BYTES`].
    #[error("a segment of it is {0} bytes long, over the limit of {MAX_SEGMENT_BYTES}")]
    SegmentTooLong(usize),
    /// The whole key is longer than [`MAX_KEY_BYTES`].
    #[error("it is {0} bytes long, over the limit of {MAX_KEY_BYTES}")]
    TooLong(usize),
}

/// Normalise and check an object key: strip leading `/`, collapse `//` (and a trailing
/// `/`), and refuse anything that could leave the storage root. Returns the key as the
/// host will use it: `"/videos//720p/a.mp4"` is `"videos/720p/a.mp4"`.
pub fn object_key(raw: &str) -> Result<String, KeyError> {
    // Checked first so that a 100 KB answer is refused without further work.
    if raw.len() > MAX_KEY_BYTES {
        return Err(KeyError::TooLong(raw.len()));
    }
    if let Some(c) = raw.chars().find(|c| c.is_control()) {
        return Err(KeyError::Control(c as u32));
    }
    if raw.contains('\\') {
        return Err(KeyError::Backslash);
    }
    let mut segments = Vec::new();
    for segment in raw.split('/') {
        match segment {
            "" => {}
            "." => return Err(KeyError::DotSegment(".")),
            ".." => return Err(KeyError::DotSegment("..")),
            s if s.len() > MAX_SEGMENT_BYTES => return Err(KeyError::SegmentTooLong(s.len())),
            s => segments.push(s),
        }
    }
    let first = segments.first().ok_or(KeyError::Empty)?;
    let mut chars = first.chars();
    if let (Some(letter), Some(':')) = (chars.next(), chars.next())
        && letter.is_ascii_alphabetic()
    {
        return Err(KeyError::Drive(letter));
    }
    Ok(segments.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_keys_are_normalised() {
        assert_eq!(object_key("a.mp4").unwrap(), "a.mp4");
        assert_eq!(object_key("/videos//720p/a.mp4").unwrap(), "videos/720p/a.mp4");
        assert_eq!(object_key("///a///b///").unwrap(), "a/b");
        // An absolute path is rooted in the storage, not on the host.
        assert_eq!(object_key("/etc/passwd").unwrap(), "etc/passwd");
        assert_eq!(object_key("//server/share/x").unwrap(), "server/share/x");
    }

    #[test]
    fn dots_are_refused_as_segments_only() {
        for bad in ["..", "../x", "a/../../etc/passwd", "a/..", "/../x", "./a", "a/./b", "a/.", "."] {
            assert!(matches!(object_key(bad), Err(KeyError::DotSegment(_))), "{bad:?}");
        }
        for ok in ["...", "a..b", "..a", "a..", ".hidden", "a/.well-known/b", "v1.0/x.mp4"] {
            assert!(object_key(ok).is_ok(), "{ok:?}");
        }
    }

    #[test]
    fn empty_keys_are_refused() {
        for bad in ["", "/", "//", "///"] {
            assert_eq!(object_key(bad), Err(KeyError::Empty), "{bad:?}");
        }
    }

    #[test]
    fn backslashes_and_windows_forms_are_refused() {
        for bad in ["a\\b", "..\\..\\x", "\\\\server\\share", "C:\\Windows", "\\\\?\\C:\\x"] {
            assert_eq!(object_key(bad), Err(KeyError::Backslash), "{bad:?}");
        }
        assert_eq!(object_key("C:/Windows/x"), Err(KeyError::Drive('C')));
        assert_eq!(object_key("/c:/x"), Err(KeyError::Drive('c')));
        assert_eq!(object_key("d:file"), Err(KeyError::Drive('d')));
        // A colon elsewhere is an ordinary character of an object name.
        assert_eq!(object_key("a/C:/b").unwrap(), "a/C:/b");
        assert_eq!(object_key("2026-01-01T10:00:00.mp4").unwrap(), "2026-01-01T10:00:00.mp4");
        assert_eq!(object_key("1:/x").unwrap(), "1:/x");
    }

    #[test]
    fn control_characters_are_refused() {
        assert_eq!(object_key("a\0b"), Err(KeyError::Control(0)));
        assert_eq!(object_key("a.mp4\0.jpg"), Err(KeyError::Control(0)));
        assert_eq!(object_key("a\nb"), Err(KeyError::Control(10)));
        assert_eq!(object_key("a\rb"), Err(KeyError::Control(13)));
        assert_eq!(object_key("a\tb"), Err(KeyError::Control(9)));
        assert_eq!(object_key("a\u{7f}b"), Err(KeyError::Control(0x7f)));
        assert_eq!(object_key("a\u{85}b"), Err(KeyError::Control(0x85)), "C1 controls too");
    }

    #[test]
    fn lengths_are_bounded() {
        let segment = "x".repeat(MAX_SEGMENT_BYTES);
        assert!(object_key(&segment).is_ok());
        assert_eq!(object_key(&format!("{segment}x")), Err(KeyError::SegmentTooLong(256)));
        // Bytes, not characters: 128 two-byte characters are 256 bytes.
        assert_eq!(object_key(&"é".repeat(128)), Err(KeyError::SegmentTooLong(256)));
        let long = vec!["y".repeat(200); 6].join("/");
        assert_eq!(object_key(&long), Err(KeyError::TooLong(long.len())));
        let exactly = format!("{}/{}", "a".repeat(255), vec!["b".repeat(255); 3].join("/"));
        assert_eq!(exactly.len(), 1023);
        assert!(object_key(&exactly).is_ok());
        assert_eq!(object_key(&"z".repeat(100_000)), Err(KeyError::TooLong(100_000)));
    }

    #[test]
    fn look_alikes_stay_literal() {
        // Percent-encoding is not decoded: these are names, not escapes.
        for literal in ["%2e%2e/x", "%2E%2E%2Fetc", "a/%2e/b", "%00", "%5c..%5c", "..%2f..%2fetc"] {
            assert_eq!(object_key(literal).unwrap(), literal, "{literal:?}");
        }
        // Unicode look-alikes of dots, slashes and backslashes are ordinary characters.
        for literal in ["．．/x", "\u{2025}/x", "a\u{2215}..\u{2215}b", "a\u{ff0f}b", "a\u{ff3c}b", "\u{fe52}\u{fe52}"] {
            assert_eq!(object_key(literal).unwrap(), literal, "{literal:?}");
        }
        // Unicode is not normalised: the key is byte-for-byte what was given.
        assert_eq!(object_key("café/e\u{301}.mp4").unwrap(), "café/e\u{301}.mp4");
    }
}
