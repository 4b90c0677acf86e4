//! The WebVTT map of a sprite output: one cue per picture, pointing at its rectangle in
//! a sheet with a media fragment (`sheet.jpg#xywh=x,y,w,h`), the form players such as
//! Video.js, JW Player and Plyr read for scrubbing previews.

use std::fmt::Write;

use crate::media::SpriteTile;

/// `HH:MM:SS.mmm`, as WebVTT wants it.
fn timestamp(seconds: f64) -> String {
    let millis = (seconds.max(0.0) * 1000.0).round() as u64;
    format!("{:02}:{:02}:{:02}.{:03}", millis / 3_600_000, millis / 60_000 % 60, millis / 1000 % 60, millis % 1000)
}

/// Render the map; `sheet_urls[i]` is where sheet `i` was uploaded.
pub fn render(tiles: &[SpriteTile], sheet_urls: &[String]) -> String {
    let mut text = String::from("WEBVTT\n");
    for tile in tiles {
        let Some(url) = sheet_urls.get(tile.sheet) else { continue };
        // A cue must last; a zero-length one (duplicate times) is skipped by players.
        let end = if tile.end > tile.start { tile.end } else { tile.start + 0.001 };
        let _ = write!(
            text,
            "\n{} --> {}\n{url}#xywh={},{},{},{}\n",
            timestamp(tile.start),
            timestamp(end),
            tile.x,
            tile.y,
            tile.width,
            tile.height
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cues_point_into_sheets() {
        let tile = |start: f64, end: f64, sheet: usize, x: u32, y: u32| SpriteTile { start, end, sheet, x, y, width: 160, height: 90 };
        let text = render(
            &[tile(0.0, 2.0, 0, 0, 0), tile(2.0, 4.0, 0, 160, 0), tile(3661.5, 3662.0, 1, 0, 90)],
            &["http://cdn/s_01.jpg".into(), "http://cdn/s_02.jpg".into()],
        );
        assert_eq!(
            text,
            "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nhttp://cdn/s_01.jpg#xywh=0,0,160,90\n\n\
             00:00:02.000 --> 00:00:04.000\nhttp://cdn/s_01.jpg#xywh=160,0,160,90\n\n\
             01:01:01.500 --> 01:01:02.000\nhttp://cdn/s_02.jpg#xywh=0,90,160,90\n"
        );
    }
}
