//! A condition plugin that misbehaves on purpose: the expression names the misdeed.
//! The host must contain each one and keep serving.

use copra_sdk::condition::copra::plugin::types::{MediaInfo, PluginError, PluginInfo, PluginKind};
use copra_sdk::condition::exports::copra::plugin::{condition, plugin};

struct Hostile;

impl plugin::Guest for Hostile {
    fn describe() -> PluginInfo {
        PluginInfo { name: "hostile-condition".into(), version: "0.1.0".into(), kind: PluginKind::Condition, provides: vec![] }
    }
}

fn misbehave(expression: &str) -> Result<bool, PluginError> {
    match expression.trim() {
        "loop" => {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        "bomb" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 1 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        "trap" => panic!("the hostile plugin panicked on purpose"),
        "big" => Err(PluginError { code: "condition_not_valid".into(), message: "x".repeat(8 << 20) }),
        "file" => match std::fs::read("/etc/passwd") {
            Ok(bytes) => Ok(!bytes.is_empty()),
            Err(err) => Err(PluginError { code: "condition_not_valid".into(), message: format!("cannot open a file: {err}") }),
        },
        "env" => Ok(std::env::var("COPRA_TEST_SECRET").is_ok_and(|v| v == "granted")),
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(PluginError { code: "condition_not_valid".into(), message: format!("unknown misdeed '{other}'") }),
    }
}

impl condition::Guest for Hostile {
    /// Checks pass, so that the misdeed happens at run time inside a job.
    fn check(_expression: String) -> Result<(), PluginError> {
        Ok(())
    }

    fn evaluate(expression: String, _input: MediaInfo) -> Result<bool, PluginError> {
        misbehave(&expression)
    }
}

// Exported only in the component: native builds (unit tests) have no component ABI.
#[cfg(target_arch = "wasm32")]
copra_sdk::export_condition!(Hostile);
