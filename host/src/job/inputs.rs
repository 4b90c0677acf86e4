//! The job's `inputs`: several inputs (an intro, the programme, an outro) joined in
//! order into the one timeline every output is made from. `"inputs": [ {…}, {…} ]`
//! stands in place of `"input"`; each item is an input block as `input` takes it, with
//! `clips` of its own. Later inputs are conformed to the first (its picture size, pixel
//! format and frame rate; the first audio's rate and channels), and an input without
//! audio is joined with silence.

use serde_json::Value;

use super::JobError;
use super::spec::InputSpec;
use crate::media::MAX_JOINED;
use crate::types::MediaInfo;

/// The `inputs` list, checked: 1 to [`MAX_JOINED`] input blocks, each as `input` takes
/// it. A direct upload can only be the first (it is held for the job at submit).
pub fn parse(value: &Value, parse_input: impl Fn(&Value) -> Result<InputSpec, JobError>) -> Result<Vec<InputSpec>, JobError> {
    let items = match value {
        Value::Array(items) if (1..=MAX_JOINED).contains(&items.len()) => items,
        _ => return Err(JobError::invalid("input_not_valid", format!("The 'inputs' must be a list of 1 to {MAX_JOINED} input objects."))),
    };
    let mut inputs = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let input = parse_input(item).map_err(|e| JobError::invalid(e.code().to_string(), format!("In 'inputs' item {i}: {e}")))?;
        if i > 0 && input.upload.is_some() {
            return Err(JobError::invalid(
                "input_not_valid",
                format!("In 'inputs' item {i}: only the first input can be a direct upload; give the others by 'url' or storage 'service'."),
            ));
        }
        inputs.push(input);
    }
    Ok(inputs)
}

/// The joined input as plans and conditions see it: the first's pictures and audio
/// (a later input's audio when the first has none), the durations added up, and the
/// audio tracks of the input that has the most (a programme's languages after a
/// one-track intro; each input plays a track in its language, else its main audio).
/// Each `info` is already its own clips joined. An error, for the user, when a later
/// input has no video but the first has.
pub fn joined_info(first: MediaInfo, others: &[MediaInfo]) -> Result<MediaInfo, String> {
    let mut info = first;
    for (i, other) in others.iter().enumerate() {
        if info.has_video && !other.has_video {
            return Err(format!("Input {} has no video, but the first input has: every joined input needs pictures.", i + 2));
        }
        if !info.has_audio && other.has_audio {
            info.has_audio = true;
            info.audio_codec = other.audio_codec.clone();
            info.sample_rate = other.sample_rate;
            info.channels = other.channels;
        }
        info.duration += other.duration;
        info.size += other.size;
    }
    info.audio_tracks = crate::media::joined_tracks(std::iter::once(info.audio_tracks.as_slice()).chain(others.iter().map(|o| o.audio_tracks.as_slice())));
    // The bitrate over the whole: bytes over seconds.
    if info.duration > 0.0 {
        info.bitrate = (info.size as f64 * 8.0 / info.duration) as u64;
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn info(duration: f64, video: bool, audio: bool) -> MediaInfo {
        MediaInfo {
            width: if video { 640 } else { 0 },
            height: if video { 360 } else { 0 },
            duration,
            has_video: video,
            has_audio: audio,
            sample_rate: if audio { 44_100 } else { 0 },
            channels: if audio { 2 } else { 0 },
            size: 1000,
            audio_tracks: if audio {
                vec![
                    crate::types::AudioTrack { stream: 1, language: Some("eng".into()), title: None, channels: 2 },
                    crate::types::AudioTrack { stream: 2, language: Some("fre".into()), title: None, channels: 2 },
                ]
            } else {
                Vec::new()
            },
            ..MediaInfo::default()
        }
    }

    #[test]
    fn the_joined_input_adds_up_and_offers_the_programmes_tracks() {
        let joined = joined_info(info(2.0, true, false), &[info(5.0, true, true), info(1.5, true, false)]).unwrap();
        assert_eq!(joined.duration, 8.5);
        assert!(joined.has_audio, "a later input's audio makes the joined input's");
        assert_eq!((joined.sample_rate, joined.channels), (44_100, 2));
        assert_eq!(joined.audio_tracks.len(), 2, "the programme's two languages");
        assert_eq!((joined.width, joined.height), (640, 360));
        let err = joined_info(info(2.0, true, true), &[info(1.0, false, true)]).unwrap_err();
        assert!(err.contains("Input 2 has no video"), "{err}");
    }

    #[test]
    fn inputs_are_a_short_list_of_input_blocks() {
        let parse_one = |v: &Value| crate::job::spec::parse_input(Some(v));
        assert_eq!(parse(&json!([{"url": "http://a/1.mp4"}, {"url": "http://a/2.mp4", "clips": [{"offset": 1, "duration": 2}]}]), parse_one).unwrap().len(), 2);
        let err = parse(&json!([]), parse_one).unwrap_err();
        assert_eq!(err.code(), "input_not_valid");
        let err = parse(&json!([{"url": "http://a/1.mp4"}, {"url": "ftp://a/2.mp4"}]), parse_one).unwrap_err();
        assert!(err.to_string().starts_with("In 'inputs' item 1: "), "{err}");
        let err = parse(&json!([{"url": "http://a/1.mp4"}, {"upload": "abc"}]), parse_one).unwrap_err();
        assert!(err.to_string().contains("only the first input"), "{err}");
        let many: Vec<Value> = (0..=MAX_JOINED).map(|i| json!({"url": format!("http://a/{i}.mp4")})).collect();
        assert!(parse(&Value::Array(many), parse_one).is_err());
    }
}
