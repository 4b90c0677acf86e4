//! Subtitle renditions in a finished package: for HLS, a segmented WebVTT playlist per
//! language beside the other renditions and an `EXT-X-MEDIA TYPE=SUBTITLES` group in the
//! master that every variant names; for DASH, a text adaptation set per language with
//! the whole WebVTT file.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::{Cue, webvtt};

/// The group every variant's `SUBTITLES` names.
const GROUP: &str = "subs";

/// One language's subtitles, on the output's timeline.
#[derive(Debug, Clone)]
pub struct Track {
    /// A checked language tag (letters, digits, `-`): safe in names and attributes.
    pub language: String,
    /// A checked name (no quotes, no line breaks).
    pub name: String,
    pub default: bool,
    pub cues: Vec<Cue>,
}

/// The HLS side of a package: its master playlist and segment length.
pub struct Hls<'a> {
    /// The master playlist, relative to the package's directory (`hls/master.m3u8`).
    pub master: &'a Path,
    pub segment: f64,
}

/// Write `tracks` into the package in `dir` (an output of `duration` seconds): returns
/// the files written or rewritten, relative to `dir`, media before playlists.
pub fn add(dir: &Path, hls: Option<Hls<'_>>, dash: Option<&Path>, duration: f64, tracks: &[Track]) -> std::io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let mut playlists = Vec::new();
    if let Some(hls) = hls {
        let master_path = dir.join(hls.master);
        let base = hls.master.parent().unwrap_or(Path::new(""));
        let mpegts = first_video_pts(&master_path).unwrap_or(0);
        for track in tracks {
            let folder = base.join(format!("{GROUP}-{}", track.language));
            std::fs::create_dir_all(dir.join(&folder))?;
            let segments = segment_files(track, duration, hls.segment, mpegts);
            let mut playlist = format!(
                "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{}\n#EXT-X-MEDIA-SEQUENCE:1\n#EXT-X-PLAYLIST-TYPE:VOD\n",
                hls.segment.ceil().max(1.0) as u64
            );
            for (i, (length, text)) in segments.into_iter().enumerate() {
                let name = format!("segment_{:05}.vtt", i + 1);
                std::fs::write(dir.join(&folder).join(&name), text)?;
                written.push(folder.join(&name));
                let _ = write!(playlist, "#EXTINF:{length:.3},\n{name}\n");
            }
            playlist.push_str("#EXT-X-ENDLIST\n");
            std::fs::write(dir.join(&folder).join("index.m3u8"), playlist)?;
            playlists.push(folder.join("index.m3u8"));
        }
        let master = std::fs::read_to_string(&master_path)?;
        std::fs::write(&master_path, hls_master(&master, tracks))?;
        playlists.push(hls.master.to_path_buf());
    }
    if let Some(mpd_path) = dash {
        let base = mpd_path.parent().unwrap_or(Path::new(""));
        for track in tracks {
            let name = base.join(format!("{GROUP}-{}.vtt", track.language));
            std::fs::write(dir.join(&name), webvtt(&track.cues.iter().collect::<Vec<_>>(), &[]))?;
            written.push(name);
        }
        let mpd = std::fs::read_to_string(dir.join(mpd_path))?;
        std::fs::write(dir.join(mpd_path), dash_manifest(&mpd, tracks))?;
        playlists.push(mpd_path.to_path_buf());
    }
    written.extend(playlists);
    Ok(written)
}

/// Each segment's length and WebVTT text: the cues that show during it (a cue across a
/// boundary is in both), times mapped onto the media's by `X-TIMESTAMP-MAP`.
fn segment_files(track: &Track, duration: f64, segment: f64, mpegts: u64) -> Vec<(f64, String)> {
    let segment = if segment > 0.0 { segment } else { 6.0 };
    let count = ((duration / segment).ceil() as usize).max(1);
    let header = [format!("X-TIMESTAMP-MAP=MPEGTS:{mpegts},LOCAL:00:00:00.000")];
    (0..count)
        .map(|i| {
            let (from, to) = (i as f64 * segment, ((i + 1) as f64 * segment).min(duration.max(segment)));
            let cues: Vec<&Cue> = track.cues.iter().filter(|c| c.end > from && c.start < to).collect();
            (to - from, webvtt(&cues, &header))
        })
        .collect()
}

/// The master playlist with the subtitle group, and every variant naming it.
fn hls_master(master: &str, tracks: &[Track]) -> String {
    let mut media = String::new();
    for t in tracks {
        let _ = writeln!(
            media,
            "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"{GROUP}\",NAME=\"{}\",LANGUAGE=\"{}\",DEFAULT={},AUTOSELECT=YES,URI=\"{GROUP}-{}/index.m3u8\"",
            t.name,
            t.language,
            if t.default { "YES" } else { "NO" },
            t.language
        );
    }
    let mut out = String::new();
    let mut inserted = false;
    for line in master.lines() {
        if line.starts_with("#EXT-X-STREAM-INF:") {
            if !inserted {
                out.push_str(&media);
                inserted = true;
            }
            let _ = writeln!(out, "{line},SUBTITLES=\"{GROUP}\"");
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !inserted {
        out.push_str(&media);
    }
    out
}

/// The MPD with a text adaptation set per language, each the whole WebVTT file.
fn dash_manifest(mpd: &str, tracks: &[Track]) -> String {
    let mut sets = String::new();
    for (i, t) in tracks.iter().enumerate() {
        let _ = write!(
            sets,
            "\t\t<AdaptationSet id=\"{id}\" contentType=\"text\" mimeType=\"text/vtt\" lang=\"{lang}\">\n\
             \t\t\t<Role schemeIdUri=\"urn:mpeg:dash:role:2011\" value=\"subtitle\"/>\n\
             \t\t\t<Label>{name}</Label>\n\
             \t\t\t<Representation id=\"{GROUP}-{lang}\" bandwidth=\"1000\">\n\
             \t\t\t\t<BaseURL>{GROUP}-{lang}.vtt</BaseURL>\n\
             \t\t\t</Representation>\n\
             \t\t</AdaptationSet>\n",
            id = 100 + i,
            lang = t.language,
            name = t.name.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;"),
        );
    }
    match mpd.rfind("</Period>") {
        Some(at) => format!("{}{sets}\t{}", &mpd[..at].trim_end_matches(['\t', ' ']), &mpd[at..]),
        None => mpd.to_string(),
    }
}

/// The presentation time (90 kHz) of the first video frame of the first MPEG-TS segment
/// the master's first variant lists: what `X-TIMESTAMP-MAP` maps cue time 0 to. None for
/// fMP4 segments (their timeline starts at 0) or what cannot be read.
fn first_video_pts(master: &Path) -> Option<u64> {
    let dir = master.parent()?;
    let text = std::fs::read_to_string(master).ok()?;
    let variant = text.lines().skip_while(|l| !l.starts_with("#EXT-X-STREAM-INF:")).nth(1)?;
    let media = dir.join(variant.trim());
    let playlist = std::fs::read_to_string(&media).ok()?;
    let segment = playlist.lines().find(|l| !l.starts_with('#') && !l.trim().is_empty())?;
    if !segment.ends_with(".ts") {
        return None;
    }
    let bytes = std::fs::read(media.parent()?.join(segment.trim())).ok()?;
    ts_first_pts(&bytes)
}

/// The PTS of the first video PES in an MPEG-TS byte stream.
fn ts_first_pts(bytes: &[u8]) -> Option<u64> {
    for packet in bytes.chunks_exact(188) {
        if packet[0] != 0x47 || packet[1] & 0x40 == 0 {
            continue;
        }
        let adaptation = (packet[3] >> 4) & 0x3;
        let mut at = 4;
        if adaptation & 0x2 != 0 {
            at += 1 + usize::from(packet[4]);
        }
        let pes = packet.get(at..)?;
        // A video PES (stream id 0xE0-0xEF) with a PTS.
        if pes.len() >= 14 && pes[..3] == [0, 0, 1] && (0xE0..=0xEF).contains(&pes[3]) && pes[7] & 0x80 != 0 {
            let p = &pes[9..14];
            let pts = (u64::from(p[0] >> 1) & 0x7) << 30 | u64::from(p[1]) << 22 | u64::from(p[2] >> 1) << 15 | u64::from(p[3]) << 7 | u64::from(p[4] >> 1);
            return Some(pts);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(language: &str, default: bool) -> Track {
        Track {
            language: language.into(),
            name: language.to_uppercase(),
            default,
            cues: vec![Cue { start: 1.0, end: 2.0, text: "one".into() }, Cue { start: 5.5, end: 6.5, text: "two".into() }],
        }
    }

    #[test]
    fn the_master_names_the_group_in_every_variant() {
        let master = "#EXTM3U\n#EXT-X-VERSION:4\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"audio\",URI=\"audio/index.m3u8\"\n#EXT-X-STREAM-INF:BANDWIDTH=1,AUDIO=\"a\"\n720p/index.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=2,AUDIO=\"a\"\n480p/index.m3u8\n";
        let out = hls_master(master, &[track("en", true), track("fr", false)]);
        assert_eq!(out.matches("TYPE=SUBTITLES").count(), 2);
        assert!(out.contains("NAME=\"EN\",LANGUAGE=\"en\",DEFAULT=YES,AUTOSELECT=YES,URI=\"subs-en/index.m3u8\""), "{out}");
        assert!(out.contains("LANGUAGE=\"fr\",DEFAULT=NO"), "{out}");
        assert_eq!(out.matches(",SUBTITLES=\"subs\"\n").count(), 2, "{out}");
        assert!(out.find("TYPE=SUBTITLES").unwrap() < out.find("#EXT-X-STREAM-INF").unwrap());
    }

    #[test]
    fn segments_hold_the_cues_that_show_in_them() {
        let segments = segment_files(&track("en", true), 10.0, 4.0, 900);
        assert_eq!(segments.len(), 3);
        assert!(segments[0].1.contains("X-TIMESTAMP-MAP=MPEGTS:900") && segments[0].1.contains("one") && !segments[0].1.contains("two"));
        assert!(segments[1].1.contains("two") && !segments[1].1.contains("one"), "5.5-6.5 s is in 4-8 s");
        assert!(!segments[2].1.contains("-->"));
        assert_eq!((segments[0].0, segments[2].0), (4.0, 2.0));
    }

    #[test]
    fn the_mpd_gets_a_text_set_per_language() {
        let mpd = "<MPD>\n\t<Period id=\"0\">\n\t\t<AdaptationSet id=\"0\"></AdaptationSet>\n\t</Period>\n</MPD>\n";
        let out = dash_manifest(mpd, &[track("en", true)]);
        assert!(out.contains("<AdaptationSet id=\"100\" contentType=\"text\" mimeType=\"text/vtt\" lang=\"en\">"), "{out}");
        assert!(out.contains("<BaseURL>subs-en.vtt</BaseURL>") && out.find("lang=\"en\"").unwrap() < out.find("</Period>").unwrap());
    }

    #[test]
    fn a_ts_video_pts_is_read() {
        let mut packet = vec![0u8; 188];
        packet[..4].copy_from_slice(&[0x47, 0x41, 0x00, 0x10]);
        // PES header: start code, stream 0xE0, length, flags with PTS, header length, PTS = 126000.
        let pts: u64 = 126_000;
        packet[4..13].copy_from_slice(&[0, 0, 1, 0xE0, 0, 0, 0x80, 0x80, 5]);
        packet[13] = 0x21 | ((pts >> 29) & 0x0E) as u8;
        packet[14] = (pts >> 22) as u8;
        packet[15] = ((pts >> 14) & 0xFE) as u8 | 1;
        packet[16] = (pts >> 7) as u8;
        packet[17] = ((pts << 1) & 0xFE) as u8 | 1;
        assert_eq!(ts_first_pts(&packet), Some(pts));
        assert_eq!(ts_first_pts(&[0u8; 188]), None);
    }
}
