//! What a package says about itself: the HLS master playlist written from the bitrates
//! the segments have, DASH bandwidths corrected, the files it is made of.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::{DASH_MANIFEST, HLS_MASTER, MEDIA_PLAYLIST, Meter, Rendition};
use crate::media::error::MediaError;
use crate::types::VideoPlan;

/// The bitrate a rung announces before it is encoded: its cap, or its target.
pub(super) fn declared_kbps(plan: &VideoPlan) -> u32 {
    let maxrate = plan.maxrate_kbps().and_then(|k| u32::try_from(k).ok());
    maxrate.or(plan.bitrate_kbps).unwrap_or_else(|| {
        // Constant quality without a cap: a rough H.264 figure for the size.
        let pixels = u64::from(plan.width) * u64::from(plan.height);
        (pixels / 300).clamp(300, 20_000) as u32
    })
}

/// Files on disk over encoded bytes: what segment headers, TS packets and fragments add.
pub(super) fn overhead(dir: &Path, meter: &Meter, belongs: impl Fn(&str) -> bool) -> f64 {
    let encoded: u64 = meter.windows.iter().sum();
    let Ok(entries) = std::fs::read_dir(dir) else { return 1.0 };
    let on_disk: u64 = entries
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            !name.ends_with(".m3u8") && !name.ends_with(".mpd") && !name.starts_with("init") && belongs(&name)
        })
        .filter_map(|e| e.metadata().ok().map(|m| m.len()))
        .sum();
    if encoded == 0 || on_disk == 0 { 1.0 } else { (on_disk as f64 / encoded as f64).max(1.0) }
}

/// Every file under `dir`, relative to it; playlists and manifests after media.
pub(super) fn package_files(dir: &Path) -> Result<Vec<PathBuf>, MediaError> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                walk(base, &path, out)?;
            } else if let Ok(relative) = path.strip_prefix(base) {
                if !relative.to_string_lossy().ends_with(".tmp") {
                    out.push(relative.to_path_buf());
                }
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(dir, dir, &mut files).map_err(|e| MediaError::Unsupported(format!("cannot list the package: {e}")))?;
    let manifest = |p: &PathBuf| p.extension().is_some_and(|e| e == "m3u8" || e == "mpd");
    // Media playlists before the master, so the master is the very last.
    files.sort_by_key(|p| (manifest(p), p.file_name().is_some_and(|n| n == HLS_MASTER || n == DASH_MANIFEST), p.clone()));
    Ok(files)
}

/// A name safe as one directory level.
pub(super) fn safe_name(name: &str) -> String {
    let cleaned: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    if cleaned.is_empty() { "rendition".into() } else { cleaned }
}

/// `name`, or with `-2`, `-3`, ... if `taken` has it.
pub(super) fn unique(taken: &[&str], name: String) -> String {
    if !taken.contains(&name.as_str()) {
        return name;
    }
    (2..).map(|i| format!("{name}-{i}")).find(|n| !taken.contains(&n.as_str())).unwrap_or(name)
}

/// The HLS master playlist: audio renditions as groups, one stream per variant with
/// the bandwidths measured on its segments (peak as BANDWIDTH, mean as AVERAGE-).
pub(super) fn master_playlist(renditions: &[Rendition], variants: &[(Option<usize>, Option<usize>)], rates: &[(u64, u64)], fmp4: bool) -> String {
    let mut text = String::from("#EXTM3U\n");
    let _ = writeln!(text, "#EXT-X-VERSION:{}", if fmp4 { 7 } else { 4 });
    text.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
    let group = |a: usize| format!("audio-{}", renditions[a].name);
    // The renditions of the group whose default is `a`: `a` first, then its alternates.
    let members = |a: usize| renditions.iter().enumerate().filter(move |(i, r)| *i == a || r.group == Some(a)).map(|(i, _)| i);
    let mut groups_written = Vec::new();
    for &(video, audio) in variants {
        let (Some(_), Some(a)) = (video, audio) else { continue };
        if groups_written.contains(&a) {
            continue;
        }
        groups_written.push(a);
        let mut names: Vec<&str> = Vec::new();
        for m in members(a) {
            let r = &renditions[m];
            // NAME is unique in its group: the track's title, else its language, else
            // the rendition's directory.
            let name = [r.title.as_deref(), r.language.as_deref()].into_iter().flatten().find(|n| !names.contains(n)).unwrap_or(&r.name);
            names.push(name);
            let language = r.language.as_ref().map(|l| format!(",LANGUAGE=\"{l}\"")).unwrap_or_default();
            let default = if m == a { "YES" } else { "NO" };
            let channels = r.channels.map(|c| format!(",CHANNELS=\"{c}\"")).unwrap_or_default();
            let _ = writeln!(
                text,
                "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"{}\"{language},NAME=\"{name}\",DEFAULT={default},AUTOSELECT=YES{channels},URI=\"{}/{MEDIA_PLAYLIST}\"",
                group(a),
                r.name
            );
        }
    }
    for &(video, audio) in variants {
        let (mut peak, mut average) = (0, 0);
        let mut codecs = Vec::new();
        let mut attributes = String::new();
        if let Some(v) = video {
            peak += rates[v].0;
            average += rates[v].1;
            codecs.extend(renditions[v].codec.clone());
        }
        if let Some(a) = audio {
            // A variant's bandwidth holds with whichever alternate the player picks.
            let alternates: Vec<usize> = if video.is_some() { members(a).collect() } else { vec![a] };
            peak += alternates.iter().map(|&m| rates[m].0).max().unwrap_or(0);
            average += alternates.iter().map(|&m| rates[m].1).max().unwrap_or(0);
            codecs.extend(renditions[a].codec.clone());
        }
        let _ = write!(attributes, "BANDWIDTH={peak},AVERAGE-BANDWIDTH={average}");
        if let Some(v) = video.map(|v| &renditions[v]) {
            if let Some((w, h)) = v.size {
                let _ = write!(attributes, ",RESOLUTION={w}x{h}");
            }
            if let Some(fps) = v.frame_rate {
                let _ = write!(attributes, ",FRAME-RATE={fps:.3}");
            }
        }
        if !codecs.is_empty() {
            let _ = write!(attributes, ",CODECS=\"{}\"", codecs.join(","));
        }
        // An audio-only variant is the audio itself, not a picture that refers to it.
        if let (Some(_), Some(a)) = (video, audio) {
            let _ = write!(attributes, ",AUDIO=\"{}\"", group(a));
        }
        let uri = match (video, audio) {
            (Some(v), _) => &renditions[v].name,
            (None, Some(a)) => &renditions[a].name,
            (None, None) => continue,
        };
        let _ = writeln!(text, "#EXT-X-STREAM-INF:{attributes}\n{uri}/{MEDIA_PLAYLIST}");
    }
    text
}

/// Set `bandwidth` of `<Representation id="{id}"` in an MPD.
pub(super) fn set_bandwidth(mpd: &str, id: usize, bits: u64) -> String {
    let tag = format!("<Representation id=\"{id}\"");
    let Some(start) = mpd.find(&tag) else { return mpd.to_string() };
    let end = mpd[start..].find('>').map_or(mpd.len(), |e| start + e);
    let element = &mpd[start..end];
    let replaced = match element.find("bandwidth=\"") {
        Some(at) => {
            let value_start = at + "bandwidth=\"".len();
            let value_end = element[value_start..].find('"').map_or(element.len(), |e| value_start + e);
            format!("{}{bits}{}", &element[..value_start], &element[value_end..])
        }
        None => format!("{tag} bandwidth=\"{bits}\"{}", &element[tag.len()..]),
    };
    format!("{}{replaced}{}", &mpd[..start], &mpd[end..])
}
