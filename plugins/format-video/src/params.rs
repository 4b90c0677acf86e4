//! The output's parameters (`offset`, `number`, `hls`, ...): a JSON object as the user
//! sent it, minus the host's own keys. Each output kind names the keys it takes; any
//! other key is `output_param_not_valid` naming it.

use copra_sdk::format::TimeRange;
use copra_sdk::{Error, Json};
use serde_json::Map;

/// The params object (`null` counts as empty), or an object inside it (`hls`, `sprite`),
/// whose keys messages then name with the parent's: `sprite.rows`.
pub struct Params<'a> {
    map: Option<&'a Map<String, Json>>,
    prefix: String,
}

impl<'a> Params<'a> {
    /// Accept `params` if it is an object whose keys are all in `allowed`.
    pub fn new(params: &'a Json, allowed: &[&str], what: &str) -> Result<Self, Error> {
        let map = match params {
            Json::Null => None,
            Json::Object(map) => Some(map),
            _ => return Err(Error::param("The output's parameters must be a JSON object.")),
        };
        let params = Params { map, prefix: String::new() };
        params.only(allowed, &format!("{what} outputs"))?;
        Ok(params)
    }

    /// The object under `parent` (already fetched as `value`), keys limited to `allowed`.
    pub fn nested(value: &'a Json, allowed: &[&str], parent: &str) -> Result<Self, Error> {
        let map = value.as_object().ok_or_else(|| Error::param(format!("The parameter '{parent}' must be an object, not {value}.")))?;
        let params = Params { map: Some(map), prefix: format!("{parent}.") };
        params.only(allowed, &format!("'{parent}'"))?;
        Ok(params)
    }

    fn only(&self, allowed: &[&str], what: &str) -> Result<(), Error> {
        for key in self.map.into_iter().flat_map(Map::keys) {
            if !allowed.contains(&key.as_str()) {
                let takes = if allowed.is_empty() { "none".to_string() } else { allowed.join(", ") };
                return Err(Error::param(format!("The parameter '{}{key}' is not valid for {what} (they take: {takes}).", self.prefix)));
            }
        }
        Ok(())
    }

    /// The name of a key in messages.
    pub fn name(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    pub fn get(&self, key: &str) -> Option<&'a Json> {
        self.map.and_then(|m| m.get(key)).filter(|v| !v.is_null())
    }

    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// A number of seconds or a count: a JSON number or a string holding one.
    pub fn number(&self, key: &str) -> Result<Option<f64>, Error> {
        self.get(key).map(|v| number(v, &self.name(key))).transpose()
    }

    pub fn integer(&self, key: &str) -> Result<Option<u32>, Error> {
        let Some(n) = self.number(key)? else { return Ok(None) };
        if n.fract() != 0.0 || !(0.0..=f64::from(u32::MAX)).contains(&n) {
            return Err(Error::param(format!("The parameter '{}' must be a whole number, not {n}.", self.name(key))));
        }
        Ok(Some(n as u32))
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>, Error> {
        self.get(key).map(|v| boolean(v, &self.name(key))).transpose()
    }

    /// A non-empty string.
    pub fn string(&self, key: &str) -> Result<Option<&'a str>, Error> {
        self.get(key).map(|v| string(v, &self.name(key))).transpose()
    }

    /// `offset` and `duration`: the part of the input to use.
    pub fn span(&self) -> Result<Span, Error> {
        let offset = self.number("offset")?.unwrap_or(0.0);
        if offset < 0.0 {
            return Err(Error::param(format!("The parameter 'offset' must be 0 or more seconds, not {offset}.")));
        }
        let duration = self.number("duration")?;
        if let Some(d) = duration.filter(|&d| d <= 0.0) {
            return Err(Error::param(format!("The parameter 'duration' must be more than 0 seconds, not {d}.")));
        }
        Ok(Span { offset, duration })
    }
}

pub fn number(value: &Json, key: &str) -> Result<f64, Error> {
    let n = match value {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    n.filter(|n| n.is_finite()).ok_or_else(|| Error::param(format!("The parameter '{key}' must be a number, not {value}.")))
}

pub fn boolean(value: &Json, key: &str) -> Result<bool, Error> {
    value.as_bool().ok_or_else(|| Error::param(format!("The parameter '{key}' must be true or false, not {value}.")))
}

pub fn string<'a>(value: &'a Json, key: &str) -> Result<&'a str, Error> {
    value
        .as_str()
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| Error::param(format!("The parameter '{key}' must be a non-empty string, not {value}.")))
}

/// The user's `offset` and `duration`, before the input is known.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Span {
    pub offset: f64,
    pub duration: Option<f64>,
}

impl Span {
    /// Start and end in input seconds. The offset must fall inside the input; the
    /// duration is clipped to what is left. An unknown input duration (0) trusts the
    /// user's numbers.
    pub fn bounds(&self, input_duration: f64) -> Result<(f64, Option<f64>), Error> {
        if input_duration <= 0.0 {
            return Ok((self.offset, self.duration.map(|d| self.offset + d)));
        }
        if self.offset >= input_duration {
            return Err(Error::param(format!("The offset {} s is not inside the input, which lasts {input_duration} s.", self.offset)));
        }
        let end = self.duration.map_or(input_duration, |d| (self.offset + d).min(input_duration));
        Ok((self.offset, Some(end)))
    }

    /// The encoded part of the input: none for the whole of it.
    pub fn range(&self, input_duration: f64) -> Result<Option<TimeRange>, Error> {
        let (offset, end) = self.bounds(input_duration)?;
        if offset == 0.0 && self.duration.is_none() {
            return Ok(None);
        }
        let duration = if self.duration.is_some() { end.map(|e| e - offset) } else { None };
        Ok(Some(TimeRange { offset, duration }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_keys_are_named() {
        let params = json!({"offset": 1, "sparkle": true});
        let err = Params::new(&params, &["offset", "duration"], "video").err().unwrap();
        assert_eq!(err.code, copra_sdk::codes::OUTPUT_PARAM_NOT_VALID);
        assert!(err.message.contains("'sparkle'") && err.message.contains("offset, duration"), "{}", err.message);
        assert!(Params::new(&json!([1]), &[], "video").is_err());
        assert!(Params::new(&Json::Null, &[], "video").is_ok());
        let inner = json!({"path": "/x", "depth": 3});
        let err = Params::nested(&inner, &["path"], "hls").err().unwrap();
        assert!(err.message.contains("'hls.depth'"), "{}", err.message);
        let inner = json!({"rows": "x"});
        let err = Params::nested(&inner, &["rows"], "sprite").unwrap().integer("rows").unwrap_err();
        assert!(err.message.contains("'sprite.rows'"), "{}", err.message);
        assert!(Params::nested(&json!(true), &[], "hls").err().unwrap().message.contains("'hls'"));
    }

    #[test]
    fn typed_values() {
        let params = json!({"a": 2.5, "b": "3", "c": "x", "d": true, "e": 4.0, "f": -1, "g": null});
        let p = Params::new(&params, &["a", "b", "c", "d", "e", "f", "g"], "t").unwrap();
        assert_eq!(p.number("a").unwrap(), Some(2.5));
        assert_eq!(p.number("b").unwrap(), Some(3.0));
        assert!(p.number("c").unwrap_err().message.contains("'c'"));
        assert_eq!(p.number("zz").unwrap(), None);
        assert_eq!(p.number("g").unwrap(), None, "null is absent");
        assert_eq!(p.bool("d").unwrap(), Some(true));
        assert!(p.bool("a").is_err());
        assert_eq!(p.integer("e").unwrap(), Some(4));
        assert_eq!(p.string("c").unwrap(), Some("x"));
        assert!(p.string("a").is_err());
        assert!(p.integer("a").is_err());
        assert!(p.integer("f").is_err());
    }

    #[test]
    fn spans() {
        let span = |v: Json| Params::new(&v, &["offset", "duration"], "t").unwrap().span();
        assert!(span(json!({"offset": -1})).unwrap_err().message.contains("offset"));
        assert!(span(json!({"duration": 0})).unwrap_err().message.contains("duration"));
        let s = span(json!({"offset": 2, "duration": 100})).unwrap();
        let r = s.range(10.0).unwrap().unwrap();
        assert_eq!((r.offset, r.duration), (2.0, Some(8.0)), "clipped to what is left");
        let r = span(json!({"offset": 2})).unwrap().range(10.0).unwrap().unwrap();
        assert_eq!((r.offset, r.duration), (2.0, None));
        assert!(span(json!({})).unwrap().range(10.0).unwrap().is_none());
        assert!(span(json!({"offset": 10})).unwrap().range(10.0).unwrap_err().message.contains("offset"));
        let r = span(json!({"duration": 3})).unwrap().range(0.0).unwrap().unwrap();
        assert_eq!((r.offset, r.duration), (0.0, Some(3.0)), "unknown input duration");
    }
}
