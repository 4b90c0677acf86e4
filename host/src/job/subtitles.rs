//! The job's `subtitles`: sidecar WebVTT or SRT files, each with its language, carried
//! into the job's adaptive-streaming packages as subtitle renditions.
//!
//! ```json
//! "subtitles": [{"url": "https://example.com/en.vtt", "language": "en", "name": "English", "default": true}]
//! ```

use copra_codes::ErrorCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::JobError;

/// The most subtitle tracks a job takes.
pub const MAX_TRACKS: usize = 16;
const MAX_URL: usize = 2048;

/// One sidecar subtitle file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubtitleSpec {
    /// Where the WebVTT or SRT file is (`http`/`https`).
    pub url: String,
    /// Its language (BCP 47, such as `en` or `pt-BR`).
    pub language: String,
    /// What players show; the language when not given.
    pub name: String,
    /// The track a player selects by default (at most one; else the first).
    pub default: bool,
}

/// The job's subtitle tracks, checked: 1 to [`MAX_TRACKS`], each with an `http(s)` URL
/// and a language tag, languages distinct, at most one `default`.
pub fn parse(value: Option<&Value>) -> Result<Vec<SubtitleSpec>, JobError> {
    let invalid = |message: String| JobError::invalid(ErrorCode::SubtitlesNotValid, message);
    let Some(value) = value.filter(|v| !v.is_null()) else { return Ok(Vec::new()) };
    let Some(items) = value.as_array().filter(|items| (1..=MAX_TRACKS).contains(&items.len())) else {
        return Err(invalid(format!("'subtitles' must be a list of 1 to {MAX_TRACKS} objects, each with a 'url' and a 'language'.")));
    };
    let mut tracks: Vec<SubtitleSpec> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Some(obj) = item.as_object() else {
            return Err(invalid(format!("Subtitle track {i} must be an object with a 'url' and a 'language', not {item}.")));
        };
        if obj.contains_key("storage") {
            return Err(invalid(format!("Subtitle track {i}: 'storage' is not supported yet; give the file's 'url'.")));
        }
        if let Some(key) = obj.keys().find(|k| !matches!(k.as_str(), "url" | "language" | "name" | "default")) {
            return Err(invalid(format!("Subtitle track {i} has '{key}'; a track takes 'url', 'language', 'name' and 'default'.")));
        }
        let url = obj.get("url").and_then(Value::as_str).map(str::trim).unwrap_or_default();
        let parsed = url::Url::parse(url).ok().filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
        if parsed.is_none() || url.len() > MAX_URL {
            return Err(invalid(format!("Subtitle track {i} needs a 'url': an http or https URL of the WebVTT or SRT file.")));
        }
        let language = obj.get("language").and_then(Value::as_str).map(str::trim).unwrap_or_default();
        let well_formed = crate::languages::is_tag(language);
        if !well_formed {
            return Err(invalid(format!("Subtitle track {i} needs a 'language' tag such as \"en\" or \"pt-BR\", not {:?}.", language)));
        }
        if tracks.iter().any(|t| t.language.eq_ignore_ascii_case(language)) {
            return Err(invalid(format!("Subtitle track {i} repeats the language '{language}'.")));
        }
        let name = match obj.get("name") {
            None | Some(Value::Null) => language.to_string(),
            Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= 100 && !s.contains(['"', '\n', '\r']) => s.trim().to_string(),
            Some(other) => return Err(invalid(format!("Subtitle track {i}'s 'name' must be a short text without quotes, not {other}."))),
        };
        let default = match obj.get("default") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => return Err(invalid(format!("Subtitle track {i}'s 'default' must be true or false, not {other}."))),
        };
        tracks.push(SubtitleSpec { url: url.to_string(), language: language.to_string(), name, default });
    }
    match tracks.iter().filter(|t| t.default).count() {
        0 => tracks[0].default = true,
        1 => {}
        _ => return Err(invalid("At most one subtitle track can be the 'default'.".into())),
    }
    Ok(tracks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tracks_with_their_defaults() {
        let tracks = parse(Some(&json!([{"url": "https://x/en.vtt", "language": "en"}, {"url": "http://x/pt.srt", "language": "pt-BR", "name": "Português", "default": false}]))).unwrap();
        assert_eq!(tracks.len(), 2);
        assert!(tracks[0].default && !tracks[1].default, "the first is the default when none is");
        assert_eq!((tracks[0].name.as_str(), tracks[1].name.as_str()), ("en", "Português"));
        let tracks = parse(Some(&json!([{"url": "https://x/en.vtt", "language": "en"}, {"url": "https://x/fr.vtt", "language": "fr", "default": true}]))).unwrap();
        assert!(!tracks[0].default && tracks[1].default);
        assert!(parse(None).unwrap().is_empty());
    }

    #[test]
    fn refusals_say_why() {
        for (v, says) in [
            (json!([]), "1 to 16"),
            (json!([{"language": "en"}]), "'url'"),
            (json!([{"url": "file:///etc/passwd", "language": "en"}]), "'url'"),
            (json!([{"url": "https://x/a.vtt"}]), "'language'"),
            (json!([{"url": "https://x/a.vtt", "language": "en\"x"}]), "'language'"),
            (json!([{"url": "https://x/a.vtt", "language": "en"}, {"url": "https://x/b.vtt", "language": "EN"}]), "repeats"),
            (json!([{"url": "https://x/a.vtt", "language": "en", "default": true}, {"url": "https://x/b.vtt", "language": "fr", "default": true}]), "At most one"),
            (json!([{"url": "https://x/a.vtt", "language": "en", "name": "A \"quoted\" name"}]), "'name'"),
            (json!([{"url": "https://x/a.vtt", "language": "en", "forced": true}]), "'forced'"),
            (json!([{"storage": {}, "language": "en"}]), "not supported yet"),
        ] {
            let err = parse(Some(&v)).unwrap_err();
            assert_eq!(err.code(), ErrorCode::SubtitlesNotValid);
            assert!(err.to_string().contains(says), "{v}: {err}");
        }
    }
}
