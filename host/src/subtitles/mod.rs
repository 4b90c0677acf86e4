//! Sidecar subtitles: WebVTT and SRT files read into cues, put on an output's timeline
//! (the input's clips joined, then the output's own range), and written into packages
//! as WebVTT renditions ([`package`]). Text only: nothing here touches media.

pub mod package;

use crate::types::TimeRange;

/// The most cues one file may hold, and its largest size.
pub const MAX_CUES: usize = 50_000;
pub const MAX_BYTES: u64 = 4 << 20;

/// One cue: when it shows (seconds) and its text (lines, WebVTT markup kept).
#[derive(Debug, Clone, PartialEq)]
pub struct Cue {
    pub start: f64,
    pub end: f64,
    pub text: String,
}

/// Why a file is not subtitles.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ParseError {
    #[error("it is not UTF-8 text")]
    NotText,
    #[error("it is neither WebVTT nor SRT: no cue timing ('00:00:01.000 --> 00:00:02.000') was found")]
    NoCues,
    #[error("line {line} has a timing that cannot be read: {timing:?}")]
    Timing { line: usize, timing: String },
    #[error("it has more than {MAX_CUES} cues")]
    TooMany,
}

/// The cues of a WebVTT or SRT file, in time order.
pub fn parse(bytes: &[u8]) -> Result<Vec<Cue>, ParseError> {
    let text = std::str::from_utf8(bytes).map_err(|_| ParseError::NotText)?;
    let text = text.trim_start_matches('\u{feff}').replace("\r\n", "\n").replace('\r', "\n");
    let mut cues = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((number, line)) = lines.next() {
        if !line.contains("-->") {
            // Headers, identifiers, SRT counters, NOTE/STYLE blocks: skipped.
            continue;
        }
        let (start, end) = timing(line).ok_or_else(|| ParseError::Timing { line: number + 1, timing: line.chars().take(80).collect() })?;
        let mut body = Vec::new();
        while let Some((_, next)) = lines.peek() {
            if next.trim().is_empty() {
                break;
            }
            body.push(clean(next));
            lines.next();
        }
        if end > start {
            cues.push(Cue { start, end, text: body.join("\n") });
        }
        if cues.len() > MAX_CUES {
            return Err(ParseError::TooMany);
        }
    }
    if cues.is_empty() && !text.trim_start().starts_with("WEBVTT") {
        return Err(ParseError::NoCues);
    }
    cues.sort_by(|a, b| a.start.total_cmp(&b.start));
    Ok(cues)
}

/// `00:01:02.500 --> 00:01:04,000 align:start`: start and end seconds.
fn timing(line: &str) -> Option<(f64, f64)> {
    let (start, rest) = line.split_once("-->")?;
    let end = rest.split_whitespace().next()?;
    Some((timestamp(start.trim())?, timestamp(end)?))
}

/// `hh:mm:ss.mmm`, `mm:ss.mmm` (WebVTT) or `hh:mm:ss,mmm` (SRT).
fn timestamp(text: &str) -> Option<f64> {
    let text = text.replace(',', ".");
    let parts: Vec<&str> = text.split(':').collect();
    let (h, m, s) = match parts.as_slice() {
        [h, m, s] => (h.parse::<u64>().ok()?, m.parse::<u64>().ok()?, s.parse::<f64>().ok()?),
        [m, s] => (0, m.parse::<u64>().ok()?, s.parse::<f64>().ok()?),
        _ => return None,
    };
    (m < 60 && (0.0..60.0).contains(&s)).then(|| h as f64 * 3600.0 + m as f64 * 60.0 + s)
}

/// A cue line as WebVTT takes it: `-->` may not appear in cue text, and SRT's `<font>`
/// tags have no meaning there.
fn clean(line: &str) -> String {
    let mut out = line.replace("-->", "→");
    for tag in ["<font", "</font>"] {
        while let Some(at) = out.to_ascii_lowercase().find(tag) {
            let end = out[at..].find('>').map_or(out.len(), |e| at + e + 1);
            out.replace_range(at..end, "");
        }
    }
    out
}

/// `cues` on an output's timeline: the parts inside the input's `clips` (joined; none:
/// the whole input), then the output's own `range` of that, from 0.
pub fn retime(cues: &[Cue], clips: &[TimeRange], range: Option<&TimeRange>) -> Vec<Cue> {
    let joined: Vec<Cue> = if clips.is_empty() {
        cues.to_vec()
    } else {
        let mut out = Vec::new();
        let mut at = 0.0;
        for clip in clips {
            let end = clip.offset + clip.duration.unwrap_or(f64::INFINITY);
            out.extend(cut(cues, clip.offset, end, at));
            at += end - clip.offset;
        }
        out
    };
    match range {
        Some(r) => cut(&joined, r.offset, r.offset + r.duration.unwrap_or(f64::INFINITY), 0.0),
        None => joined,
    }
}

/// The cues (parts of cues) inside `from..to`, moved to start at `at`.
fn cut(cues: &[Cue], from: f64, to: f64, at: f64) -> Vec<Cue> {
    cues.iter()
        .filter(|c| c.end > from && c.start < to)
        .map(|c| Cue { start: c.start.max(from) - from + at, end: c.end.min(to) - from + at, text: c.text.clone() })
        .collect()
}

/// `hh:mm:ss.mmm`.
pub fn vtt_time(seconds: f64) -> String {
    let ms = (seconds.max(0.0) * 1000.0).round() as u64;
    format!("{:02}:{:02}:{:02}.{:03}", ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000)
}

/// A WebVTT file of `cues`, with `header` lines after `WEBVTT` (such as HLS's
/// `X-TIMESTAMP-MAP`).
pub fn webvtt(cues: &[&Cue], header: &[String]) -> String {
    let mut out = String::from("WEBVTT\n");
    for line in header {
        out.push_str(line);
        out.push('\n');
    }
    for cue in cues {
        out.push_str(&format!("\n{} --> {}\n{}\n", vtt_time(cue.start), vtt_time(cue.end), cue.text));
    }
    out
}

/// An ASS script of `cues` for drawing into a picture (libass): white text with a dark
/// outline, bottom centre, sized for a 360-line picture (libass scales it to the frame).
pub fn ass(cues: &[Cue]) -> String {
    let mut out = String::from(
        "[Script Info]\nScriptType: v4.00+\nPlayResX: 640\nPlayResY: 360\nWrapStyle: 0\nScaledBorderAndShadow: yes\n\n\
         [V4+ Styles]\nFormat: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, Underline, StrikeOut, \
         ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\n\
         Style: Default,DejaVu Sans,22,&H00FFFFFF,&H000000FF,&H00000000,&H80000000,0,0,0,0,100,100,0,0,1,2,1,2,20,20,18,1\n\n\
         [Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n",
    );
    let time = |t: f64| {
        let cs = (t.max(0.0) * 100.0).round() as u64;
        format!("{}:{:02}:{:02}.{:02}", cs / 360_000, cs / 6000 % 60, cs / 100 % 60, cs % 100)
    };
    for cue in cues {
        out.push_str(&format!("Dialogue: 0,{},{},Default,,0,0,0,,{}\n", time(cue.start), time(cue.end), ass_text(&cue.text)));
    }
    out
}

/// WebVTT cue text as ASS event text: line breaks as `\N`, `<i>`/`<b>`/`<u>` as
/// override tags, other tags dropped, braces (ASS's override blocks) made parentheses.
pub fn ass_text(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text.replace('{', "(").replace('}', ")");
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('>').map_or(rest.len(), |c| open + c + 1);
        let tag = rest[open..close].trim_matches(['<', '>']).split([' ', '.']).next().unwrap_or_default().to_ascii_lowercase();
        out.push_str(match tag.as_str() {
            "i" => "{\\i1}",
            "/i" => "{\\i0}",
            "b" => "{\\b1}",
            "/b" => "{\\b0}",
            "u" => "{\\u1}",
            "/u" => "{\\u0}",
            _ => "",
        });
        rest = rest[close..].to_string();
    }
    out.push_str(&rest);
    // WebVTT's character references, as the text they stand for.
    let out = out.replace("&lt;", "<").replace("&gt;", ">").replace("&nbsp;", "\u{a0}").replace("&amp;", "&");
    out.replace('\n', "\\N")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRT: &str = "1\r\n00:00:01,000 --> 00:00:02,500\r\n<font color=\"red\">Hello</font>\r\nworld\r\n\r\n2\r\n00:00:04,000 --> 00:00:05,000\r\nA --> B\r\n";
    const VTT: &str = "\u{feff}WEBVTT\n\nNOTE a comment\n\nintro\n00:01.000 --> 00:02.000 align:start\n<i>Hi</i>\n\n00:00:03.000 --> 00:00:04.000\nThere\n";

    #[test]
    fn srt_and_webvtt_read_alike() {
        let srt = parse(SRT.as_bytes()).unwrap();
        assert_eq!(srt, vec![Cue { start: 1.0, end: 2.5, text: "Hello\nworld".into() }, Cue { start: 4.0, end: 5.0, text: "A → B".into() }]);
        let vtt = parse(VTT.as_bytes()).unwrap();
        assert_eq!(vtt, vec![Cue { start: 1.0, end: 2.0, text: "<i>Hi</i>".into() }, Cue { start: 3.0, end: 4.0, text: "There".into() }]);
        assert_eq!(parse(b"WEBVTT\n").unwrap(), Vec::new(), "an empty WebVTT file is subtitles with no cue");
        assert_eq!(parse(b"hello"), Err(ParseError::NoCues));
        assert_eq!(parse(&[0xff, 0xfe, 0]), Err(ParseError::NotText));
        assert!(matches!(parse(b"1\n00:00:xx --> 00:00:01,000\nx\n"), Err(ParseError::Timing { line: 2, .. })));
    }

    #[test]
    fn an_ass_script_for_drawing() {
        let script = ass(&[Cue { start: 1.0, end: 62.255, text: "<i>Hi</i> {there}\n<v Bob>two".into() }]);
        assert!(script.contains("Style: Default,DejaVu Sans,22"), "{script}");
        assert!(script.ends_with("Dialogue: 0,0:00:01.00,0:01:02.26,Default,,0,0,0,,{\\i1}Hi{\\i0} (there)\\Ntwo\n"), "{script}");
        assert_eq!(ass_text("a &lt;b&gt; &amp; c"), "a <b> & c", "WebVTT's references are the characters");
    }

    #[test]
    fn cues_follow_the_clips_and_the_range() {
        let cues = parse(SRT.as_bytes()).unwrap();
        // Clips 2..3 s and 4..6 s: the first cue's last half second, then the second cue.
        let clips = [TimeRange { offset: 2.0, duration: Some(1.0) }, TimeRange { offset: 4.0, duration: Some(2.0) }];
        let timed = retime(&cues, &clips, None);
        assert_eq!(timed.iter().map(|c| (c.start, c.end)).collect::<Vec<_>>(), vec![(0.0, 0.5), (1.0, 2.0)]);
        let timed = retime(&cues, &[], Some(&TimeRange { offset: 2.0, duration: Some(2.5) }));
        assert_eq!(timed.iter().map(|c| (c.start, c.end)).collect::<Vec<_>>(), vec![(0.0, 0.5), (2.0, 2.5)]);
        assert_eq!(vtt_time(3723.4567), "01:02:03.457");
        let text = webvtt(&timed.iter().collect::<Vec<_>>(), &["X-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000".into()]);
        assert!(text.starts_with("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n\n00:00:00.000 --> 00:00:00.500\nHello\nworld\n"), "{text}");
    }
}
