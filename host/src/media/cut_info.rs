//! What a chunk file of an ultrafast job carries in its metadata so that its reader can
//! decode it as part of the whole input (written by `cut_chunks`, read when a worker
//! opens the chunk).

use std::path::Path;

use ffmpeg::{Rational, format};
use ffmpeg_next as ffmpeg;

use super::error::MediaError;

/// The metadata key a chunk file's [`CutInfo`] is written under.
pub(super) const CUT_KEY: &str = "copra_cut";

/// What a chunk file's reader needs to decode it as part of the whole input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct CutInfo {
    /// The input video stream's time base, which the file's timestamps are rescaled to.
    pub time_base: Rational,
    /// The input video's frame rate, as the decoder of the whole input saw it.
    pub frame_rate: Rational,
    /// Degrees clockwise a player turns the input's pictures.
    pub rotation: i32,
    /// What to subtract from each timestamp (in `time_base`) to get the input's time.
    pub shift: i64,
    /// The whole input's duration, in seconds.
    pub duration: f64,
}

impl CutInfo {
    pub(super) fn text(&self) -> String {
        let (tb, fr) = (self.time_base, self.frame_rate);
        format!("{}/{} {}/{} {} {} {}", tb.numerator(), tb.denominator(), fr.numerator(), fr.denominator(), self.rotation, self.shift, self.duration)
    }

    fn parse(text: &str) -> Option<CutInfo> {
        let ratio = |text: &str| {
            let (num, den) = text.split_once('/')?;
            let (num, den) = (num.parse::<i32>().ok()?, den.parse::<i32>().ok()?);
            (num > 0 && den > 0).then(|| Rational::new(num, den))
        };
        let mut fields = text.split(' ');
        let info = CutInfo {
            time_base: ratio(fields.next()?)?,
            frame_rate: ratio(fields.next()?)?,
            rotation: fields.next()?.parse().ok()?,
            shift: fields.next()?.parse().ok()?,
            duration: fields.next()?.parse().ok().filter(|d: &f64| d.is_finite() && *d >= 0.0)?,
        };
        fields.next().is_none().then_some(info)
    }

    /// The cut of an open chunk file, from its metadata.
    pub fn of(context: &format::context::Input, path: &Path) -> Result<CutInfo, MediaError> {
        context
            .metadata()
            .get(CUT_KEY)
            .and_then(CutInfo::parse)
            .ok_or_else(|| MediaError::Corrupt(format!("{} is not a chunk of an ultrafast job", path.display())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_info_round_trips_and_refuses_damage() {
        let info = CutInfo { time_base: Rational::new(1, 15360), frame_rate: Rational::new(30000, 1001), rotation: 90, shift: 15_360_000, duration: 32.04 };
        assert_eq!(CutInfo::parse(&info.text()), Some(info));
        for bad in ["", "1/0 25/1 0 0 1", "1/25 25/1 0 0 1 extra", "1/25 25/1 x 0 1", "1/25 25/1 0 0 NaN"] {
            assert_eq!(CutInfo::parse(bad), None, "{bad}");
        }
    }
}
