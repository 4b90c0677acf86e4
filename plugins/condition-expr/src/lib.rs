//! The `if` language of Coconut outputs:
//! `({{ input.rotation }} = 0 or {{ input.rotation }} = 180) and {{ input.width }} > {{ input.height }}`.
//!
//! Grammar (lowest precedence first):
//! ```text
//! or   := and ( ("or" | "||") and )*
//! and  := not ( ("and" | "&&") not )*
//! not  := ("not" | "!") not | cmp
//! cmp  := atom ( ("=" | "==" | "!=" | "<" | "<=" | ">" | ">=") atom )?
//! atom := number | string | "true" | "false" | "{{ input.NAME }}" | "(" or ")"
//! ```

mod parse;

use copra_sdk::Error;
use copra_sdk::condition::{Condition, MediaInfo};

pub use parse::{Expr, Value, parse};

/// The variables an expression may name, with their value for an input.
pub fn variable(name: &str, input: &MediaInfo) -> Option<Value> {
    Some(match name {
        "width" => Value::Number(f64::from(input.width)),
        "height" => Value::Number(f64::from(input.height)),
        "duration" => Value::Number(input.duration),
        "rotation" => Value::Number(f64::from(input.rotation)),
        "fps" => Value::Number(input.fps),
        "bitrate" => Value::Number(input.bitrate as f64),
        "size" => Value::Number(input.size as f64),
        "sample_rate" => Value::Number(f64::from(input.sample_rate)),
        "channels" => Value::Number(f64::from(input.channels)),
        "has_video" => Value::Bool(input.has_video),
        "has_audio" => Value::Bool(input.has_audio),
        "video_codec" => Value::Text(input.video_codec.clone()),
        "audio_codec" => Value::Text(input.audio_codec.clone()),
        "pix_fmt" => Value::Text(input.pix_fmt.clone()),
        "format" => Value::Text(input.format_name.clone()),
        "color_transfer" => Value::Text(input.color_transfer.clone()),
        "color_primaries" => Value::Text(input.color_primaries.clone()),
        // PQ or HLG: what `force_sdr` tone-maps.
        "hdr" => Value::Bool(matches!(input.color_transfer.as_str(), "smpte2084" | "arib-std-b67")),
        _ => return None,
    })
}

/// Names accepted in `{{ input.NAME }}`.
pub const VARIABLES: &[&str] = &[
    "width", "height", "duration", "rotation", "fps", "bitrate", "size", "sample_rate", "channels", "has_video",
    "has_audio", "video_codec", "audio_codec", "pix_fmt", "format", "color_transfer", "color_primaries", "hdr",
];

/// Parse and evaluate against an input.
pub fn evaluate(expression: &str, input: &MediaInfo) -> Result<bool, String> {
    let expr = parse(expression)?;
    match expr.eval(&|name| variable(name, input))? {
        Value::Bool(b) => Ok(b),
        other => Err(format!("The condition '{expression}' gives {other}, not true or false.")),
    }
}

pub struct ConditionExpr;

impl Condition for ConditionExpr {
    const NAME: &'static str = env!("CARGO_PKG_NAME");
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn check(expression: &str) -> Result<(), Error> {
        parse(expression).map(drop).map_err(Error::condition)
    }

    fn evaluate(expression: &str, input: &MediaInfo) -> Result<bool, Error> {
        evaluate(expression, input).map_err(Error::condition)
    }
}

copra_sdk::condition_plugin!(ConditionExpr);

#[cfg(test)]
mod tests {
    use super::*;

    fn input(width: u32, height: u32, rotation: i32) -> MediaInfo {
        MediaInfo {
            width,
            height,
            duration: 12.5,
            rotation,
            fps: 25.0,
            bitrate: 1_000_000,
            has_video: true,
            has_audio: true,
            video_codec: "h264".into(),
            audio_codec: "aac".into(),
            pix_fmt: "yuv420p".into(),
            sample_rate: 48000,
            channels: 2,
            size: 1234,
            format_name: "mov,mp4,m4a,3gp,3g2,mj2".into(),
            color_transfer: "bt709".into(),
            color_primaries: "bt709".into(),
        }
    }

    #[test]
    fn colours_and_hdr() {
        let mut pq = input(3840, 2160, 0);
        (pq.color_transfer, pq.color_primaries) = ("smpte2084".into(), "bt2020".into());
        assert_eq!(evaluate("{{ input.hdr }}", &pq), Ok(true));
        assert_eq!(evaluate("{{ input.hdr }}", &input(1920, 1080, 0)), Ok(false));
        assert_eq!(evaluate("{{ input.color_primaries }} = 'bt2020' and {{ input.width }} >= 3840", &pq), Ok(true));
    }

    #[test]
    fn seed_examples() {
        let landscape = "({{ input.rotation }} = 0 or {{ input.rotation }} = 180) and {{ input.width }} > {{ input.height }}";
        let portrait = "(({{ input.rotation }} = 90 or {{ input.rotation }} = 270) and {{ input.width }} > {{ input.height }}) or {{ input.height }} > {{ input.width }}";
        assert_eq!(evaluate(landscape, &input(1920, 1080, 0)), Ok(true));
        assert_eq!(evaluate(landscape, &input(1920, 1080, 90)), Ok(false));
        assert_eq!(evaluate(portrait, &input(1920, 1080, 90)), Ok(true));
        assert_eq!(evaluate(portrait, &input(1080, 1920, 0)), Ok(true));
        assert_eq!(evaluate(portrait, &input(1920, 1080, 180)), Ok(false));
        assert_eq!(evaluate("{{ input.width }} >= 1280", &input(1280, 720, 0)), Ok(true));
        assert_eq!(evaluate("{{ input.width }} >= 1920", &input(1280, 720, 0)), Ok(false));
    }

    #[test]
    fn operators_strings_and_booleans() {
        let i = input(1280, 720, 0);
        assert_eq!(evaluate("{{ input.video_codec }} == 'h264' && {{ input.has_audio }}", &i), Ok(true));
        assert_eq!(evaluate("not ({{ input.fps }} < 30)", &i), Ok(false));
        assert_eq!(evaluate("!{{input.has_video}} || {{ input.duration }} <= 12.5", &i), Ok(true));
        assert_eq!(evaluate("{{ input.audio_codec }} != \"opus\"", &i), Ok(true));
        assert_eq!(evaluate("true and false or true", &i), Ok(true), "and binds tighter than or");
        assert_eq!(evaluate("{{ input.channels }} = 2 and {{ input.sample_rate }} > 44100", &i), Ok(true));
    }

    #[test]
    fn syntax_errors_say_where() {
        for bad in ["{{ input.width }} >>= 3", "({{ input.width }} > 3", "{{ input.width > 3", "1 = ", "'open", "1 2", ""] {
            let err = parse(bad).unwrap_err();
            assert!(!err.is_empty(), "{bad}");
        }
        assert!(parse("{{ input.width }} >>= 3").unwrap_err().contains("position"));
    }

    #[test]
    fn unknown_variables_are_check_errors() {
        let err = parse("{{ input.colour }} = 1").unwrap_err();
        assert!(err.contains("colour"), "{err}");
        assert!(parse("{{ output.width }} = 1").is_err());
    }

    #[test]
    fn seed_prevent_upscaling_ladder() {
        // Seed 001 "Prevent upscaling": one output per rung, each guarded by the width.
        let rungs = [480, 720, 1280, 1920, 3840];
        let runs = |width: u32| rungs.iter().filter(|w| evaluate(&format!("{{{{ input.width }}}} >= {w}"), &input(width, 720, 0)) == Ok(true)).count();
        assert_eq!(runs(1280), 3);
        assert_eq!(runs(3840), 5);
        assert_eq!(runs(320), 0);
    }

    #[test]
    fn every_variable_is_known() {
        let i = input(1280, 720, 90);
        for name in VARIABLES {
            let expr = format!("{{{{ input.{name} }}}} = {{{{input.{name}}}}}");
            assert_eq!(evaluate(&expr, &i), Ok(true), "{expr}");
        }
        assert_eq!(evaluate("{{ input.rotation }} = 90 and {{ input.size }} = 1234 and {{ input.bitrate }} > 999999.5", &i), Ok(true));
        assert_eq!(evaluate("{{ input.pix_fmt }} = 'yuv420p' and {{ input.has_video }} = true", &i), Ok(true));
        assert_eq!(evaluate("{{ input.audio_codec }} < 'b' and 'a' < 'b'", &i), Ok(true), "strings compare lexically");
        assert_eq!(evaluate("-1 < 0 and 2.50 = 2.5", &i), Ok(true));
    }

    #[test]
    fn check_and_evaluate_report_condition_not_valid() {
        use copra_sdk::codes::CONDITION_NOT_VALID;
        assert_eq!(ConditionExpr::check("{{ input.width }} > 3"), Ok(()));
        assert_eq!(ConditionExpr::check("{{ input.foo }} > 3").unwrap_err().code, CONDITION_NOT_VALID);
        assert_eq!(ConditionExpr::check("{{ input.width }} >").unwrap_err().code, CONDITION_NOT_VALID);
        let err = ConditionExpr::evaluate("{{ input.width }} = 'wide'", &input(1, 1, 0)).unwrap_err();
        assert_eq!(err.code, CONDITION_NOT_VALID);
        assert!(err.message.contains("cannot compare"), "{}", err.message);
    }

    #[test]
    fn error_messages_name_the_token_and_position() {
        assert_eq!(parse("1 = 1 )").unwrap_err(), "unexpected ')' at position 6");
        assert_eq!(parse("1 = 1 and").unwrap_err(), "the condition ends early at position 9: a value is missing");
        assert_eq!(parse("width > 3").unwrap_err(), "unknown word 'width' at position 0");
        assert!(parse("1 = 1 # 2").unwrap_err().contains("'#' at position 6"));
        assert!(parse("1 < 2 < 3").unwrap_err().contains("position 6"), "comparisons do not chain");
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = format!("{}true{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(parse(&deep).unwrap_err().contains("nests deeper"));
        assert!(parse(&format!("{}true", "not ".repeat(10_000))).is_err());
        let fine = format!("{}true{}", "(".repeat(20), ")".repeat(20));
        assert_eq!(parse(&fine), Ok(Expr::Literal(Value::Bool(true))));
    }

    #[test]
    fn type_mismatches_fail_at_evaluation() {
        let i = input(1280, 720, 0);
        assert!(evaluate("{{ input.video_codec }} > 3", &i).is_err());
        assert!(evaluate("{{ input.width }}", &i).is_err(), "a number is not a condition");
    }
}
