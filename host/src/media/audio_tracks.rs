//! Alternate audio: which of the input's audio tracks a package carries, matched by
//! language, and the language each rendition announces.
//!
//! Files tag their tracks in ISO 639-2 (`eng`, `fre` or `fra`); players and playlists
//! speak BCP 47 (`en`, `fr`). A request for `en` finds a track tagged `eng` and the
//! other way round, and a rendition announces the shortest form of its track's tag
//! (`crate::languages`).

use crate::languages::{bcp47, iso639_2 as three_letters, same_language};
use crate::types::{AudioSelection, AudioTrack};

use super::refusal::PlanRefused;

/// The most languages a plan may name.
pub const MAX_LANGUAGES: usize = 16;

/// Whether a request for `wanted` is answered by a track tagged `tag`: the same
/// language, and the same region when the request names one.
fn matches(wanted: &str, tag: &str) -> bool {
    if wanted.contains('-') { bcp47(wanted).is_some_and(|w| bcp47(tag).is_some_and(|t| w.eq_ignore_ascii_case(&t))) } else { same_language(wanted, tag.split('-').next().unwrap_or(tag)) }
}

/// The three-letter ISO 639-2/T code files store (MP4 packs three letters): `en` →
/// `eng`, `fr` → `fra`; none for what has no such code.
pub fn iso639_2(tag: &str) -> Option<String> {
    Some(three_letters(tag)).filter(|c| c != "und")
}

/// Why a plugin's selection is refused, if it is.
pub fn check(selection: &AudioSelection) -> Result<(), PlanRefused> {
    let AudioSelection::Languages(languages) = selection else { return Ok(()) };
    if languages.is_empty() || languages.len() > MAX_LANGUAGES {
        return Err(PlanRefused::Value(format!("package names {} audio languages, outside 1..={MAX_LANGUAGES}", languages.len())));
    }
    match languages.iter().find(|l| !crate::languages::is_iso_tag(l)) {
        Some(bad) => Err(PlanRefused::Value(format!("package names audio language '{}', which is not a language tag", bad.escape_debug()))),
        None => Ok(()),
    }
}

/// Why an input cannot give what a package asks for.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SelectError {
    #[error("the input has no audio track in {missing} (its tracks: {have})")]
    Missing { missing: String, have: String },
    #[error("the input has no audio")]
    NoAudio,
    #[error("the input has {0} audio tracks; a package carries at most {MAX_LANGUAGES}")]
    TooMany(usize),
}

/// Longest track name a playlist announces.
const MAX_TITLE: usize = 64;

/// A track as a playlist may announce it: its language as a BCP 47 tag (or none, if
/// the file's tag is not one) and its title as plain text without quotes. The tags
/// are the input's, written by whoever made the file.
fn announced(track: &AudioTrack) -> AudioTrack {
    let language = track.language.as_deref().filter(|l| crate::languages::is_iso_tag(l)).and_then(bcp47);
    let title = track.title.as_deref().and_then(|t| crate::languages::track_name(t, MAX_TITLE));
    AudioTrack { stream: track.stream, language, title, channels: track.channels }
}

/// The input's tracks `selection` names, the default (first asked for, or the main
/// track) first. Empty for the main track alone: a package as without a selection.
pub fn select(selection: &AudioSelection, tracks: &[AudioTrack]) -> Result<Vec<AudioTrack>, SelectError> {
    match selection {
        AudioSelection::Main => Ok(Vec::new()),
        AudioSelection::All if tracks.len() <= 1 => Ok(Vec::new()),
        AudioSelection::All if tracks.len() > MAX_LANGUAGES => Err(SelectError::TooMany(tracks.len())),
        AudioSelection::All => Ok(tracks.iter().map(announced).collect()),
        AudioSelection::Languages(_) if tracks.is_empty() => Err(SelectError::NoAudio),
        AudioSelection::Languages(languages) => {
            let mut chosen = Vec::new();
            let mut missing = Vec::new();
            for wanted in languages {
                match tracks.iter().find(|t| t.language.as_deref().is_some_and(|tag| matches(wanted, tag))) {
                    Some(track) if !chosen.iter().any(|c: &AudioTrack| c.stream == track.stream) => chosen.push(announced(track)),
                    Some(_) => {}
                    None => missing.push(wanted.as_str()),
                }
            }
            if !missing.is_empty() {
                let have: Vec<String> = tracks.iter().map(|t| t.language.clone().unwrap_or_else(|| "untagged".into())).collect();
                return Err(SelectError::Missing { missing: missing.join(", "), have: have.join(", ") });
            }
            Ok(chosen)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(stream: usize, language: Option<&str>) -> AudioTrack {
        AudioTrack { stream, language: language.map(String::from), title: None, channels: 2 }
    }

    #[test]
    fn files_store_three_letters() {
        assert_eq!(iso639_2("en").as_deref(), Some("eng"));
        assert_eq!(iso639_2("fre").as_deref(), Some("fra"));
        assert_eq!(iso639_2("pt-BR").as_deref(), Some("por"));
        assert_eq!(iso639_2("tlh").as_deref(), Some("tlh"));
        assert_eq!(iso639_2("xx"), None);
    }

    #[test]
    fn languages_find_tracks_whatever_the_form() {
        let tracks = [track(1, Some("eng")), track(2, Some("fre")), track(3, None), track(4, Some("por"))];
        let chosen = select(&AudioSelection::Languages(vec!["fr".into(), "EN".into(), "pt-BR".into()]), &tracks);
        assert!(matches!(chosen, Err(SelectError::Missing { ref missing, .. }) if missing == "pt-BR"), "{chosen:?}");
        let chosen = select(&AudioSelection::Languages(vec!["fr".into(), "EN".into(), "pt".into()]), &tracks).unwrap();
        assert_eq!(chosen.iter().map(|t| t.stream).collect::<Vec<_>>(), [2, 1, 4]);
        let err = select(&AudioSelection::Languages(vec!["de".into()]), &tracks).unwrap_err();
        assert_eq!(err.to_string(), "the input has no audio track in de (its tracks: eng, fre, untagged, por)");
    }

    #[test]
    fn all_and_main() {
        let tracks = [track(1, Some("eng")), track(2, Some("fre"))];
        assert_eq!(select(&AudioSelection::All, &tracks).unwrap().len(), 2);
        assert!(select(&AudioSelection::All, &tracks[..1]).unwrap().is_empty(), "one track is the main track");
        assert!(select(&AudioSelection::Main, &tracks).unwrap().is_empty());
        assert_eq!(select(&AudioSelection::Languages(vec!["en".into()]), &[]), Err(SelectError::NoAudio));
    }

    #[test]
    fn tags_from_the_file_are_announced_safely() {
        let mut tracks = vec![track(1, Some("eng\"\n#EXT")), track(2, Some("fre"))];
        tracks[1].title = Some("Fran\u{e7}ais \"VF\"\n,#EXT-X".into());
        let chosen = select(&AudioSelection::All, &tracks).unwrap();
        assert_eq!(chosen[0].language, None);
        assert_eq!((chosen[1].language.as_deref(), chosen[1].title.as_deref()), (Some("fr"), Some("Fran\u{e7}ais VF#EXT-X")));
        let many: Vec<AudioTrack> = (0..17).map(|i| track(i, Some("eng"))).collect();
        assert_eq!(select(&AudioSelection::All, &many), Err(SelectError::TooMany(17)));
    }

    #[test]
    fn plugins_are_held_to_tags() {
        assert!(check(&AudioSelection::Languages(vec!["en".into(), "pt-BR".into()])).is_ok());
        assert!(check(&AudioSelection::Languages(vec![])).is_err());
        assert!(check(&AudioSelection::Languages(vec!["en\"\n#EXT-X".into()])).is_err());
        assert!(check(&AudioSelection::Languages(vec!["en".into(); 17])).is_err());
    }
}
