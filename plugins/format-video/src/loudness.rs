//! The `loudness` parameter of audio, video and `httpstream` outputs: a target for
//! EBU R128 / ITU-R BS.1770-4 normalization, a preset's name, or `{"measure_only": true}`.
//!
//! ```json
//! "loudness": {"integrated": -16, "true_peak": -1.5, "lra": 11}
//! "loudness": "ebu"
//! "loudness": {"measure_only": true}
//! ```

use copra_sdk::format::LoudnessPlan;
use copra_sdk::{Error, Json};

use crate::params::Params;

/// The parameter's name.
pub const KEY: &str = "loudness";

/// Keys of the object form.
const KEYS: &[&str] = &["integrated", "true_peak", "lra", "measure_only"];

/// What an object leaves out: the common streaming target (Apple's −16 LUFS with
/// −1.5 dBTP of headroom for lossy codecs) and a range wide enough for most programmes.
const DEFAULT: (f64, f64, f64) = (-16.0, -1.5, 11.0);

/// The named targets: EBU R128 (broadcast in Europe), ATSC A/85 (broadcast in the US),
/// and the loudness most streaming services play at (Spotify, YouTube, Tidal: −14).
const PRESETS: &[(&str, (f64, f64, f64))] = &[("ebu", (-23.0, -1.0, 20.0)), ("atsc", (-24.0, -2.0, 20.0)), ("streaming", (-14.0, -1.0, 11.0))];

/// The bounds each number must fall in (those of FFmpeg's `loudnorm`, which users know).
const INTEGRATED: (f64, f64) = (-70.0, -5.0);
const TRUE_PEAK: (f64, f64) = (-9.0, 0.0);
const LRA: (f64, f64) = (1.0, 50.0);

/// What an output asked for (the plan's fields, comparable, as the output specs are).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Target {
    pub integrated: f64,
    pub true_peak: f64,
    pub lra: f64,
    pub measure_only: bool,
}

impl Target {
    pub fn plan(&self) -> LoudnessPlan {
        LoudnessPlan { integrated: self.integrated, true_peak: self.true_peak, lra: self.lra, measure_only: self.measure_only }
    }
}

/// The output's loudness target, if it asked for one.
pub fn parse(params: &Params<'_>) -> Result<Option<Target>, Error> {
    let Some(value) = params.get(KEY) else { return Ok(None) };
    let name = params.name(KEY);
    let plan = |(integrated, true_peak, lra): (f64, f64, f64), measure_only| Target { integrated, true_peak, lra, measure_only };
    match value {
        Json::String(preset) => match PRESETS.iter().find(|(n, _)| n.eq_ignore_ascii_case(preset.trim())) {
            Some((_, target)) => Ok(Some(plan(*target, false))),
            None => Err(Error::param(format!(
                "The parameter '{name}' names no preset '{preset}' (presets: {}), nor is it an object such as {{\"integrated\": -16, \"true_peak\": -1.5, \"lra\": 11}}.",
                PRESETS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
            ))),
        },
        Json::Object(_) => {
            let inner = Params::nested(value, KEYS, &name)?;
            if inner.bool("measure_only")? == Some(true) {
                if let Some(other) = ["integrated", "true_peak", "lra"].iter().find(|k| inner.has(k)) {
                    return Err(Error::param(format!("The parameter '{name}.{other}' sets a target, which '{name}.measure_only' leaves the audio without.")));
                }
                return Ok(Some(plan(DEFAULT, true)));
            }
            let bounded = |key: &str, default: f64, (lo, hi): (f64, f64), unit: &str| -> Result<f64, Error> {
                let v = inner.number(key)?.unwrap_or(default);
                if !(lo..=hi).contains(&v) {
                    return Err(Error::param(format!("The parameter '{name}.{key}' must be from {lo} to {hi} {unit}, not {v}.")));
                }
                Ok(v)
            };
            let integrated = bounded("integrated", DEFAULT.0, INTEGRATED, "LUFS")?;
            let true_peak = bounded("true_peak", DEFAULT.1, TRUE_PEAK, "dBTP")?;
            let lra = bounded("lra", DEFAULT.2, LRA, "LU")?;
            Ok(Some(plan((integrated, true_peak, lra), false)))
        }
        other => Err(Error::param(format!("The parameter '{name}' must be a preset's name or an object, not {other}."))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn of(v: Json) -> Result<Option<Target>, Error> {
        let params = json!({ "loudness": v });
        parse(&Params::new(&params, &["loudness"], "video").unwrap())
    }

    #[test]
    fn targets_presets_and_measure_only() {
        let p = of(json!({"integrated": -16, "true_peak": -1.5, "lra": 11})).unwrap().unwrap();
        assert_eq!((p.integrated, p.true_peak, p.lra, p.measure_only), (-16.0, -1.5, 11.0, false));
        let p = of(json!({"integrated": "-23"})).unwrap().unwrap();
        assert_eq!((p.integrated, p.true_peak, p.lra), (-23.0, -1.5, 11.0), "defaults fill what is left out");
        assert_eq!(of(json!("EBU")).unwrap().unwrap().integrated, -23.0);
        assert_eq!(of(json!("atsc")).unwrap().unwrap().true_peak, -2.0);
        assert_eq!(of(json!("streaming")).unwrap().unwrap().integrated, -14.0);
        assert!(of(json!({"measure_only": true})).unwrap().unwrap().measure_only);
        assert!(!of(json!({"measure_only": false, "integrated": -20})).unwrap().unwrap().measure_only);
        let none = json!({});
        assert!(parse(&Params::new(&none, &["loudness"], "video").unwrap()).unwrap().is_none());
    }

    #[test]
    fn refusals_name_the_key() {
        for (v, says) in [
            (json!({"integrated": -3}), "'loudness.integrated' must be from -70 to -5"),
            (json!({"integrated": -80}), "'loudness.integrated'"),
            (json!({"true_peak": 1}), "'loudness.true_peak' must be from -9 to 0"),
            (json!({"lra": 0}), "'loudness.lra'"),
            (json!({"lra": "wide"}), "'loudness.lra' must be a number"),
            (json!({"loud": true}), "'loudness.loud' is not valid"),
            (json!({"measure_only": true, "integrated": -16}), "measure_only"),
            (json!("radio"), "no preset 'radio'"),
            (json!(-16), "a preset's name or an object"),
        ] {
            let err = of(v.clone()).unwrap_err();
            assert_eq!(err.code, copra_sdk::codes::OUTPUT_PARAM_NOT_VALID, "{v}");
            assert!(err.message.contains(says), "{v}: {}", err.message);
        }
    }
}
