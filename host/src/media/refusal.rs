//! Why the host refuses what a format plugin planned, or an input it probed: the first
//! problem found, in words that name the field and the bound it broke. The kind says who
//! can act on it: the plugin's author (a value, a shape, a step), the operator (a limit
//! of theirs), or nobody but the host (fields only it fills in).

/// Why a plan, or a step of a target-quality search or of planning a ladder, is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanRefused {
    /// A value the host does not take: a name off its list, a number outside its
    /// bounds, text that is not plain (`video fps 500 is outside (0, 240]`).
    #[error("{0}")]
    Value(String),
    /// Above a limit the operator sets in `[limits]` (`max_pixels`, `max_pictures`,
    /// `max_variants`); the message names it.
    #[error("{0}")]
    OverLimit(String),
    /// A field only the host fills in: a file it wrote or fetched, a measurement it
    /// made, the input's tracks it resolved.
    #[error("{0}")]
    HostOnly(String),
    /// Parts that do not make one kind of output (pictures and a package, nothing at
    /// all), or a setting asked of a plan that has nothing to set it on.
    #[error("{0}")]
    Shape(String),
    /// A search or ladder step beyond the host's bounds (too many rounds or probes).
    #[error("{0}")]
    Step(String),
}

/// Why a probed input is refused before any decoding: it is above a limit the operator
/// sets.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InputRefused {
    #[error(
        "The input's picture is {width}x{height} ({pixels} pixels), above this server's limit of {limit} pixels; the operator sets it with \
         [limits] max_pixels or COPRA_LIMITS_MAX_PIXELS."
    )]
    TooManyPixels { width: u32, height: u32, pixels: u64, limit: u64 },
    #[error(
        "The input lasts {seconds:.1} seconds, above this server's limit of {limit} seconds; the operator sets it with \
         [limits] max_duration_secs or COPRA_LIMITS_MAX_DURATION_SECS."
    )]
    TooLong { seconds: f64, limit: f64 },
}
