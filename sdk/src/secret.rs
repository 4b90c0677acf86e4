//! A value that must never be printed: keys, passwords, tokens.

use std::fmt;

use serde::{Deserialize, Deserializer};

/// A secret string from a storage block (a secret access key, a password, an API key).
///
/// `Debug` and `Display` print `***`, so a config struct holding one can be logged or
/// put in an error message without leaking it; [`Secret::expose`] is the one way to read
/// it, at the place it is handed to the host. It deserialises from a non-empty JSON
/// string; anything else is an error that never quotes the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a value (tests and plugins that build secrets themselves).
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself. Call this only where it leaves for the host (an opendal option,
    /// a request header), never to format a message.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Secret;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Secret, E> {
                if value.is_empty() { Err(E::custom("is empty")) } else { Ok(Secret(value.to_string())) }
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let secret: Secret = serde_json::from_str(r#""hunter2""#).unwrap();
        assert_eq!(format!("{secret:?} {secret}"), "*** ***");
        assert_eq!(secret.expose(), "hunter2");
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Holder {
            key: Secret,
        }
        let holder: Holder = serde_json::from_str(r#"{"key":"hunter2"}"#).unwrap();
        assert!(!format!("{holder:?}").contains("hunter2"));
    }

    #[test]
    fn only_non_empty_strings_are_secrets() {
        assert!(serde_json::from_str::<Secret>(r#""""#).unwrap_err().to_string().contains("is empty"));
        let err = serde_json::from_str::<Secret>("12345").unwrap_err().to_string();
        assert!(err.contains("expected a string"), "{err}");
    }
}
