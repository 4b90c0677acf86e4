//! The audio codecs a format string names, and what each encoder accepts: its sample
//! rates and, at each rate and channel count, its bitrates.

use AudioCodec::*;

/// Logical audio codecs (the `audio-plan` codec names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioCodec {
    Aac,
    /// libopus.
    Opus,
    /// libvorbis.
    Vorbis,
    /// libmp3lame.
    Mp3,
    Flac,
    /// `pcm_s16le`, for wav.
    Pcm,
}

/// Every sample rate the grammar knows.
pub const SAMPLE_RATES: &[u32] = &[8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 96000];

impl AudioCodec {
    pub fn name(self) -> &'static str {
        match self {
            Aac => "aac",
            Opus => "opus",
            Vorbis => "vorbis",
            Mp3 => "mp3",
            Flac => "flac",
            Pcm => "pcm_s16le",
        }
    }

    pub fn from_item(item: &str) -> Option<Self> {
        Some(match item {
            "aac" => Aac,
            "opus" => Opus,
            "vorbis" => Vorbis,
            "mp3" => Mp3,
            "flac" => Flac,
            "pcm" | "pcm_s16le" => Pcm,
            _ => return None,
        })
    }

    /// The sample rates the encoder accepts (of [`SAMPLE_RATES`]).
    pub fn sample_rates(self) -> &'static [u32] {
        match self {
            Opus => &[8000, 12000, 16000, 24000, 48000],
            // libvorbis has no bitrate tunings at 96 kHz.
            Mp3 | Vorbis => &[8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000],
            Aac | Flac | Pcm => SAMPLE_RATES,
        }
    }

    /// The bitrates (kbit/s) the encoder takes at a sample rate and channel count; none
    /// for lossless codecs. libvorbis's managed mode only has tunings inside an envelope
    /// that depends on both (measured against libvorbis 1.3); libopus allows 256k a channel.
    pub fn bitrates(self, rate: u32, channels: u32) -> Option<(u32, u32)> {
        let stereo = channels >= 2;
        Some(match self {
            Aac => (8, 512),
            Opus => (6, if stereo { 510 } else { 256 }),
            Mp3 => (8, 320),
            Vorbis => match (rate, stereo) {
                (8000, false) => (16, 40),
                (8000, true) => (16, 80),
                (11025 | 12000, false) => (16, 48),
                (11025 | 12000, true) => (16, 96),
                (16000, false) => (16, 96),
                (16000, true) => (24, 192),
                (22050 | 24000, false) => (16, 80),
                (22050 | 24000, true) => (32, 160),
                (32000, false) => (32, 160),
                (32000, true) => (40, 320),
                (_, false) => (32, 240),
                (_, true) => (48, 500),
            },
            Flac | Pcm => return None,
        })
    }

    /// The widest bitrate range over whatever is not known yet (the sample rate, the
    /// channel count): a bitrate outside it cannot work for any input.
    pub(crate) fn bitrate_bounds(self, rate: Option<u32>, channels: Option<u32>) -> Option<(u32, u32)> {
        let given;
        let rates = match rate {
            Some(r) => {
                given = [r];
                &given[..]
            }
            None => self.sample_rates(),
        };
        let layouts: &[u32] = match channels {
            Some(1) => &[1],
            Some(_) => &[2],
            None => &[1, 2],
        };
        rates
            .iter()
            .flat_map(|&r| layouts.iter().filter_map(move |&c| self.bitrates(r, c)))
            .reduce(|(lo, hi), (l, h)| (lo.min(l), hi.max(h)))
    }

    pub(crate) fn default_bitrate(self) -> u32 {
        match self {
            Opus => 96,
            Flac | Pcm => 0,
            Aac | Vorbis | Mp3 => 128,
        }
    }
}
