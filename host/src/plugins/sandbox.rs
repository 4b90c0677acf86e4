//! What one plugin may use, from the operator's grant (`[plugins.NAME]`): memory, a
//! CPU-time budget, a wall-clock deadline, outgoing hosts, storage schemes and
//! environment; and the `Store` every call of it runs in.
//!
//! The model: a plugin's answer is a request. What the host does with it is bounded by
//! this sandbox, whatever the plugin says.

use std::sync::Arc;
use std::time::Duration;

use opendal::Scheme;
use wasmtime::{Engine, Store, UpdateDeadline};

use super::engine::EPOCH_TICK;
use super::hosts::{self, HostGrantError, HostPattern};
use super::outbound::PluginNet;
use super::state::PluginState;
use crate::config::PluginGrant;

/// Linear memory of one instance unless granted more (`memory_mib`).
pub const DEFAULT_MEMORY: usize = 64 << 20;
/// CPU time of one call unless granted more (`time_ms`).
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(1);
/// Wall-clock time of one call unless granted more (`deadline_ms`), waiting included.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(10);

/// Schemes a first-party plugin gets when its grant does not say (by plugin name).
const DEFAULT_SCHEMES: &[(&str, &[&str])] = &[("storage-s3", &["s3"]), ("storage-cloud", &["azblob", "gcs", "sftp", "swift"])];
/// Hosts a first-party plugin gets when its grant does not say. `notifier-http` posts
/// to whatever webhook URL a user names; the outbound policy decides the addresses.
const DEFAULT_HOSTS: &[(&str, &[&str])] = &[("notifier-http", &["*"])];

/// Schemes that read or write the server's own files (or databases kept in them). The
/// host's files are reachable only through the `local` target; these are never granted.
const NEVER_GRANTED: &[Scheme] = &[
    Scheme::Fs,
    Scheme::Compfs,
    Scheme::Monoiofs,
    Scheme::Cacache,
    Scheme::Sled,
    Scheme::Redb,
    Scheme::Rocksdb,
    Scheme::Persy,
    Scheme::Sqlite,
];

/// Schemes the host serves with a client of its own rather than opendal's (`sftp`:
/// see `storage::sftp`).
const HOST_NATIVE: &[Scheme] = &[Scheme::Sftp];

/// Why the grant of a plugin (`[plugins.NAME]`) is not valid: a sentence naming the
/// grant key to fix.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// `time_ms = 0`: no call could run at all.
    #[error("[plugins.{plugin}] time_ms must be at least 1")]
    NoBudget { plugin: String },
    /// A wall-clock deadline shorter than the CPU budget it must contain.
    #[error(
        "[plugins.{plugin}] deadline_ms ({deadline_ms} ms) is below time_ms ({budget_ms} ms): a call's wall-clock deadline \
         must leave room for its time budget"
    )]
    DeadlineBelowBudget { plugin: String, deadline_ms: u128, budget_ms: u128 },
    /// An `allowed_hosts` entry that is not a host grant.
    #[error("[plugins.{plugin}] allowed_hosts: {error}")]
    Hosts {
        plugin: String,
        #[source]
        error: HostGrantError,
    },
    /// A scheme of `schemes` that cannot be granted.
    #[error("[plugins.{plugin}] schemes: {error}")]
    Schemes {
        plugin: String,
        #[source]
        error: SchemeError,
    },
}

/// Why a scheme named in a grant cannot be granted.
#[derive(Debug, thiserror::Error)]
pub enum SchemeError {
    /// Not a scheme name opendal reads.
    #[error("'{text}' is not an opendal scheme: {error}")]
    NotAScheme {
        text: String,
        #[source]
        error: opendal::Error,
    },
    /// A name opendal reads as a custom scheme: not one of its services.
    #[error("'{text}' is not an opendal scheme this server knows")]
    Unknown { text: String },
    /// One of the host's own files ([`NEVER_GRANTED`]).
    #[error(
        "'{text}' can never be granted: it would let a plugin read and write the server's own files. \
         Files in the data directory are reachable through the 'local' target"
    )]
    NeverGranted { text: String },
    /// A service this build of the server does not include.
    #[error("this server is built without the opendal service '{scheme}' (it has: {})", .grantable.join(", "))]
    NotBuilt { scheme: Scheme, grantable: Vec<&'static str> },
}

/// A host a plugin asked to reach that its grant does not allow (or that is not a
/// concrete `host:port`).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("the host '{entry}' is not granted to the plugin")]
pub struct NotGranted {
    /// The entry as the plugin asked for it.
    pub entry: String,
}

/// The limits and rights of one plugin's calls.
pub struct Sandbox {
    /// Cap on the plugin's linear memory.
    pub memory_bytes: usize,
    /// CPU time one call may use, counted in epoch ticks while the guest runs.
    pub budget: Duration,
    /// Wall-clock time one call may take, host I/O (wasi:http) included.
    pub deadline: Duration,
    /// `allowed_hosts` as written (each checked by [`HostPattern::parse`]).
    pub allowed_hosts: Vec<String>,
    /// The same, parsed.
    patterns: Vec<HostPattern>,
    /// opendal schemes the plugin's storage targets may use.
    pub schemes: Vec<Scheme>,
    /// Environment variables the plugin can read.
    pub env: Vec<(String, String)>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Granted environment holds secrets: names only.
        let env: Vec<&str> = self.env.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("Sandbox")
            .field("memory_bytes", &self.memory_bytes)
            .field("budget", &self.budget)
            .field("deadline", &self.deadline)
            .field("allowed_hosts", &self.allowed_hosts)
            .field("schemes", &self.schemes)
            .field("env", &env)
            .finish()
    }
}

impl Sandbox {
    /// The sandbox of the plugin `name` from its grant (or the defaults). An error is a
    /// sentence naming the grant key to fix.
    pub fn new(name: &str, grant: Option<&PluginGrant>) -> Result<Self, SandboxError> {
        let default = PluginGrant::default();
        let grant = grant.unwrap_or(&default);
        let plugin = || name.to_string();
        let budget = grant.time_ms.map(Duration::from_millis).unwrap_or(DEFAULT_BUDGET);
        if budget.is_zero() {
            return Err(SandboxError::NoBudget { plugin: plugin() });
        }
        let deadline = match grant.deadline_ms.map(Duration::from_millis) {
            Some(deadline) if deadline < budget => {
                return Err(SandboxError::DeadlineBelowBudget {
                    plugin: plugin(),
                    deadline_ms: deadline.as_millis(),
                    budget_ms: budget.as_millis(),
                });
            }
            Some(deadline) => deadline,
            None => DEFAULT_DEADLINE.max(budget),
        };

        let defaults = |table: &[(&str, &[&str])]| -> Vec<String> {
            table.iter().find(|(plugin, _)| *plugin == name).map(|(_, v)| v.iter().map(|s| s.to_string()).collect()).unwrap_or_default()
        };
        let allowed_hosts = if grant.allowed_hosts.is_empty() { defaults(DEFAULT_HOSTS) } else { grant.allowed_hosts.clone() };
        let patterns = allowed_hosts
            .iter()
            .map(|entry| HostPattern::parse(entry).map_err(|error| SandboxError::Hosts { plugin: plugin(), error }))
            .collect::<Result<Vec<_>, _>>()?;
        let schemes = grant
            .schemes
            .clone()
            .unwrap_or_else(|| defaults(DEFAULT_SCHEMES))
            .iter()
            .map(|s| grantable_scheme(s).map_err(|error| SandboxError::Schemes { plugin: plugin(), error }))
            .collect::<Result<Vec<_>, _>>()?;

        Ok(Sandbox {
            memory_bytes: grant.memory_mib.map(|m| (m as usize) << 20).unwrap_or(DEFAULT_MEMORY),
            budget,
            deadline,
            allowed_hosts,
            patterns,
            schemes,
            env: grant.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        })
    }

    /// A call's CPU budget in epoch ticks.
    fn budget_ticks(&self) -> u64 {
        (self.budget.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64
    }

    /// A fresh store for one call (or one kept instance): no filesystem, no sockets,
    /// the granted environment, outgoing HTTP only to `hosts` (grant entries), the
    /// memory cap, and a full CPU budget.
    pub fn store(&self, engine: &Engine, plugin: Arc<str>, hosts: Vec<String>, net: PluginNet) -> Store<PluginState> {
        let state = PluginState::new(plugin, hosts, &self.env, self.memory_bytes, net);
        let mut store = Store::new(engine, state);
        store.limiter(|state| &mut state.limits);
        // The guest yields the runtime thread at every epoch tick (so a busy plugin never
        // holds it), and traps with `Trap::Interrupt` once it has run for the budget's
        // number of ticks. Ticks spent waiting on host I/O are not counted: the
        // wall-clock deadline bounds those. Installed once per store; each call only
        // resets the count (see `renew_budget`).
        let budget = self.budget_ticks();
        store.epoch_deadline_callback(move |mut store| {
            let spent = &mut store.data_mut().ticks_spent;
            *spent += 1;
            if *spent >= budget {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now())))
            }
        });
        store.set_epoch_deadline(1);
        store
    }

    /// Give `store` (made by [`Self::store`]) the full CPU budget again, for its next call.
    pub fn renew_budget(&self, store: &mut Store<PluginState>) {
        store.data_mut().ticks_spent = 0;
        store.set_epoch_deadline(1);
    }

    /// The granted scheme a storage target names, by its canonical name in any case
    /// (`s3`, `S3`). The plugin's text is compared, never parsed: an alias or an
    /// unknown name is simply not granted.
    pub fn granted_scheme(&self, text: &str) -> Option<Scheme> {
        self.schemes.iter().copied().find(|s| s.into_static().eq_ignore_ascii_case(text))
    }

    /// The asked `host:port` entries that the grant allows, each as the concrete entry
    /// the call's store gets. `Err` names the first entry not granted (or malformed).
    pub fn granted_hosts(&self, asked: &[String]) -> Result<Vec<String>, NotGranted> {
        asked
            .iter()
            .map(|entry| match hosts::asked(entry) {
                Some((host, port)) if self.patterns.iter().any(|p| p.matches(&host, port)) => Ok(format!("{host}:{port}")),
                _ => Err(NotGranted { entry: entry.clone() }),
            })
            .collect()
    }
}

/// Whether a scheme named by a plugin is one that is never granted (compared by name,
/// in any case; the text is not parsed).
pub fn is_never_granted(text: &str) -> bool {
    NEVER_GRANTED.iter().any(|s| s.into_static().eq_ignore_ascii_case(text))
}

/// A scheme an operator may grant: one opendal knows, and not one of the host's files.
fn grantable_scheme(text: &str) -> Result<Scheme, SchemeError> {
    let scheme: Scheme = text.parse().map_err(|error| SchemeError::NotAScheme { text: text.to_string(), error })?;
    if matches!(scheme, Scheme::Custom(_)) {
        return Err(SchemeError::Unknown { text: text.to_string() });
    }
    if NEVER_GRANTED.contains(&scheme) {
        return Err(SchemeError::NeverGranted { text: text.to_string() });
    }
    let grantable = grantable_schemes();
    if !grantable.contains(&scheme.into_static()) {
        return Err(SchemeError::NotBuilt { scheme, grantable });
    }
    Ok(scheme)
}

/// Every scheme an operator may grant a plugin, by name, sorted: the opendal services
/// this server is built with and those the host serves itself (`sftp`), less the ones
/// never granted.
pub fn grantable_schemes() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Scheme::enabled()
        .into_iter()
        .chain(HOST_NATIVE.iter().copied())
        .filter(|s| !NEVER_GRANTED.contains(s))
        .map(Scheme::into_static)
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(toml_text: &str) -> PluginGrant {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn default_grants_are_valid_for_any_name() {
        for name in ["storage-s3", "notifier-http", "format-video", "condition-expr", "anything-else"] {
            Sandbox::new(name, None).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn defaults_by_plugin() {
        let s3 = Sandbox::new("storage-s3", None).unwrap();
        assert_eq!(s3.granted_scheme("s3"), Some(Scheme::S3));
        assert_eq!(s3.granted_scheme("S3"), Some(Scheme::S3));
        assert_eq!(s3.granted_scheme("fs"), None);
        assert_eq!(s3.granted_scheme("s3 "), None);
        let cloud = Sandbox::new("storage-cloud", None).unwrap();
        for scheme in [Scheme::Azblob, Scheme::Gcs, Scheme::Sftp, Scheme::Swift] {
            assert_eq!(cloud.granted_scheme(scheme.into_static()), Some(scheme));
        }
        assert_eq!(cloud.granted_scheme("s3"), None);
        let other = Sandbox::new("my-storage", None).unwrap();
        assert_eq!(other.granted_scheme("s3"), None, "third parties get no scheme by default");
        assert_eq!(other.deadline, DEFAULT_DEADLINE);
        assert_eq!(other.budget, DEFAULT_BUDGET);
        assert_eq!(Sandbox::new("notifier-http", None).unwrap().granted_hosts(&["any.example:8443".into()]).unwrap(), ["any.example:8443"]);
        assert!(Sandbox::new("my-notifier", None).unwrap().granted_hosts(&["any.example:443".into()]).is_err());
    }

    #[test]
    fn fs_is_never_granted() {
        for fs in ["fs", "FS", "Fs", "compfs", "sqlite"] {
            let err = Sandbox::new("x", Some(&grant(&format!("schemes = [\"{fs}\"]")))).unwrap_err().to_string();
            assert!(err.contains("[plugins.x] schemes") && err.contains("never be granted"), "{err}");
        }
        let err = Sandbox::new("x", Some(&grant("schemes = [\"nonsense\"]"))).unwrap_err().to_string();
        assert!(err.contains("'nonsense'"), "{err}");
        let err = Sandbox::new("x", Some(&grant("schemes = [\"dropbox\"]"))).unwrap_err().to_string();
        assert!(err.contains("built without") && err.contains("s3"), "{err}");
        let granted = Sandbox::new("x", Some(&grant("schemes = [\"S3\"]"))).unwrap();
        assert_eq!(granted.granted_scheme("s3"), Some(Scheme::S3));
        let none = Sandbox::new("storage-s3", Some(&grant("schemes = []"))).unwrap();
        assert_eq!(none.granted_scheme("s3"), None, "an explicit grant replaces the default");
    }

    #[test]
    fn grantable_schemes_are_opendal_s_and_the_host_s_less_the_never_granted() {
        let all = grantable_schemes();
        for scheme in ["s3", "azblob", "gcs", "swift", "sftp"] {
            assert!(all.contains(&scheme), "{scheme} in {all:?}");
        }
        for never in NEVER_GRANTED {
            assert!(!all.contains(&never.into_static()), "{never} in {all:?}");
        }
        assert!(all.windows(2).all(|w| w[0] < w[1]), "sorted, once each: {all:?}");
        // Each can be granted, and the refusal of another lists them all.
        for scheme in &all {
            assert!(grantable_scheme(scheme).is_ok(), "{scheme}");
        }
        let err = grantable_scheme("dropbox").unwrap_err().to_string();
        assert!(err.ends_with(&format!("(it has: {})", all.join(", "))), "{err}");
    }

    #[test]
    fn deadline_never_below_budget() {
        let err = Sandbox::new("x", Some(&grant("time_ms = 2000\ndeadline_ms = 500"))).unwrap_err().to_string();
        assert!(err.contains("[plugins.x] deadline_ms") && err.contains("time_ms"), "{err}");
        let long_budget = Sandbox::new("x", Some(&grant("time_ms = 30000"))).unwrap();
        assert_eq!(long_budget.deadline, Duration::from_secs(30));
        let set = Sandbox::new("x", Some(&grant("time_ms = 100\ndeadline_ms = 250"))).unwrap();
        assert_eq!((set.budget_ticks(), set.deadline), (10, Duration::from_millis(250)));
    }

    #[test]
    fn hosts_are_the_intersection_of_asked_and_granted() {
        let s = Sandbox::new("n", Some(&grant("allowed_hosts = [\"*.example.com:443\", \"127.0.0.1:*\"]"))).unwrap();
        let asked = vec!["A.example.com:443".to_string(), "127.0.0.1:8080".to_string()];
        assert_eq!(s.granted_hosts(&asked).unwrap(), ["a.example.com:443", "127.0.0.1:8080"]);
        assert_eq!(s.granted_hosts(&["example.com:443".into()]).unwrap_err().entry, "example.com:443");
        assert_eq!(s.granted_hosts(&["localhost:8080".into()]).unwrap_err().entry, "localhost:8080");
        assert_eq!(s.granted_hosts(&["*:443".into()]).unwrap_err().entry, "*:443", "a plugin cannot ask for a wildcard");
        let err = Sandbox::new("n", Some(&grant("allowed_hosts = [\"example.com\"]"))).unwrap_err().to_string();
        assert!(err.contains("[plugins.n] allowed_hosts"), "{err}");
    }

    #[test]
    fn debug_hides_granted_secrets() {
        let s = Sandbox::new("n", Some(&grant("env = { TOKEN = \"s3cr3t\" }"))).unwrap();
        let shown = format!("{s:?}");
        assert!(shown.contains("TOKEN") && !shown.contains("s3cr3t"), "{shown}");
    }

    #[test]
    fn refusals_keep_their_sentences() {
        let refusal = |toml_text: &str| Sandbox::new("my-storage", Some(&grant(toml_text))).unwrap_err().to_string();
        assert_eq!(refusal("time_ms = 0"), "[plugins.my-storage] time_ms must be at least 1");
        assert_eq!(
            refusal("time_ms = 2000\ndeadline_ms = 500"),
            "[plugins.my-storage] deadline_ms (500 ms) is below time_ms (2000 ms): a call's wall-clock deadline must leave room \
             for its time budget"
        );
        assert_eq!(
            refusal("allowed_hosts = [\"example.com\"]"),
            "[plugins.my-storage] allowed_hosts: 'example.com' names no port; use 'host:port', 'host:*', '*.domain:port' or '*'"
        );
        assert_eq!(
            refusal("schemes = [\"fs\"]"),
            "[plugins.my-storage] schemes: 'fs' can never be granted: it would let a plugin read and write the server's own \
             files. Files in the data directory are reachable through the 'local' target"
        );
        assert!(refusal("schemes = [\"nonsense\"]").starts_with("[plugins.my-storage] schemes: 'nonsense' is not an opendal scheme"));
        assert_eq!(SchemeError::Unknown { text: "x".into() }.to_string(), "'x' is not an opendal scheme this server knows");
        assert_eq!(
            SchemeError::NotBuilt { scheme: Scheme::Dropbox, grantable: vec!["s3", "sftp"] }.to_string(),
            "this server is built without the opendal service 'dropbox' (it has: s3, sftp)"
        );
        assert_eq!(NotGranted { entry: "example.com:443".into() }.to_string(), "the host 'example.com:443' is not granted to the plugin");
    }
}
