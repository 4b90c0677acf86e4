//! The input's `clips`: ranges of the input joined, in order, into the timeline every
//! output is made from (`"input": {"url": …, "clips": [{"offset": 10, "duration": 5}, …]}`).

use copra_codes::ErrorCode;
use serde_json::Value;

use super::JobError;
use crate::types::TimeRange;

/// The most clips one input takes.
pub const MAX_CLIPS: usize = 100;

/// The clips of an input block, checked: 1 to [`MAX_CLIPS`], each an `offset` (0 or more
/// seconds) and a `duration` (more than 0), in the input's order and not overlapping.
pub fn parse(value: Option<&Value>) -> Result<Vec<TimeRange>, JobError> {
    let invalid = |message: String| JobError::invalid(ErrorCode::InputNotValid, message);
    let Some(value) = value.filter(|v| !v.is_null()) else { return Ok(Vec::new()) };
    let Some(items) = value.as_array().filter(|items| (1..=MAX_CLIPS).contains(&items.len())) else {
        return Err(invalid(format!("The input's 'clips' must be a list of 1 to {MAX_CLIPS} objects with an 'offset' and a 'duration'.")));
    };
    let mut clips: Vec<TimeRange> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Some(obj) = item.as_object() else {
            return Err(invalid(format!("The input's clip {i} must be an object with an 'offset' and a 'duration', not {item}.")));
        };
        if let Some(key) = obj.keys().find(|k| !matches!(k.as_str(), "offset" | "duration")) {
            return Err(invalid(format!("The input's clip {i} has '{key}'; a clip takes only 'offset' and 'duration'.")));
        }
        let number = |key: &str| -> Option<f64> {
            match obj.get(key)? {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            }
            .filter(|v: &f64| v.is_finite())
        };
        let offset = number("offset").unwrap_or(0.0);
        let Some(duration) = number("duration").filter(|d| *d > 0.0) else {
            return Err(invalid(format!("The input's clip {i} needs a 'duration' of more than 0 seconds.")));
        };
        if offset < 0.0 {
            return Err(invalid(format!("The input's clip {i} has an 'offset' of {offset}; it must be 0 or more seconds.")));
        }
        if let Some(previous) = clips.last().and_then(|c| c.duration.map(|d| c.offset + d)).filter(|end| offset < *end - 1e-9) {
            return Err(invalid(format!(
                "The input's clip {i} starts at {offset} s, before the clip ahead of it ends ({previous} s): clips follow the input's order and do not overlap."
            )));
        }
        clips.push(TimeRange { offset, duration: Some(duration) });
    }
    Ok(clips)
}

/// How long `clips` of an input of `duration` seconds last together.
pub use crate::media::joined_duration;

/// Why an input's clips do not fit the input as probed, for the user.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClipError {
    /// A clip that starts at or after the input's end.
    #[error("The input's clip {index} starts at {offset} s, past the input's end ({duration:.3} s).")]
    PastEnd {
        /// The clip's index in the input's `clips`, from 0.
        index: usize,
        /// Where the clip starts, in seconds.
        offset: f64,
        /// How long the input is, in seconds.
        duration: f64,
    },
}

/// The input as its clips joined show it (its duration theirs); an error when a clip
/// starts past the input's end.
pub fn joined_info(clips: &[TimeRange], mut info: crate::types::MediaInfo) -> Result<crate::types::MediaInfo, ClipError> {
    if clips.is_empty() {
        return Ok(info);
    }
    if info.duration > 0.0
        && let Some((i, clip)) = clips.iter().enumerate().find(|(_, c)| c.offset >= info.duration)
    {
        return Err(ClipError::PastEnd { index: i, offset: clip.offset, duration: info.duration });
    }
    info.duration = joined_duration(clips, info.duration);
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn clips_in_order() {
        let clips = parse(Some(&json!([{"offset": 1, "duration": 2}, {"offset": "5", "duration": 1.5}]))).unwrap();
        assert_eq!(clips, vec![TimeRange { offset: 1.0, duration: Some(2.0) }, TimeRange { offset: 5.0, duration: Some(1.5) }]);
        assert!(parse(None).unwrap().is_empty() && parse(Some(&Value::Null)).unwrap().is_empty());
        assert_eq!(joined_duration(&clips, 10.0), 3.5);
        assert_eq!(joined_duration(&clips, 5.5), 2.5, "cut at the input's end");
        assert_eq!(joined_duration(&[], 7.0), 7.0);
    }

    #[test]
    fn refusals_say_why() {
        for (v, says) in [
            (json!([]), "1 to 100"),
            (json!("0-5"), "a list"),
            (json!([{"offset": 1}]), "'duration'"),
            (json!([{"offset": -1, "duration": 1}]), "0 or more"),
            (json!([{"offset": 0, "duration": 2}, {"offset": 1, "duration": 2}]), "do not overlap"),
            (json!([{"offset": 5, "duration": 1}, {"offset": 0, "duration": 1}]), "input's order"),
            (json!([{"offset": 0, "duration": 1, "speed": 2}]), "'speed'"),
            (json!(vec![json!({"offset": 0, "duration": 0.1}); 101]), "1 to 100"),
        ] {
            let err = parse(Some(&v)).unwrap_err();
            assert_eq!(err.code(), ErrorCode::InputNotValid);
            assert!(err.to_string().contains(says), "{v}: {err}");
        }
    }

    #[test]
    fn a_clip_past_the_end_is_told() {
        let info = crate::types::MediaInfo { duration: 8.5, ..Default::default() };
        let clips = [TimeRange { offset: 1.0, duration: Some(2.0) }, TimeRange { offset: 9.0, duration: Some(1.0) }];
        let err = joined_info(&clips, info.clone()).unwrap_err();
        assert_eq!(err, ClipError::PastEnd { index: 1, offset: 9.0, duration: 8.5 });
        assert_eq!(err.to_string(), "The input's clip 1 starts at 9 s, past the input's end (8.500 s).");
        assert_eq!(joined_info(&clips[..1], info.clone()).unwrap().duration, 2.0);
        assert_eq!(joined_info(&[], info).unwrap().duration, 8.5);
    }
}
