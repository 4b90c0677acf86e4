//! Storage plugins: where a storage block's files go, and the object key of each path.
//! Both answers are requests the host checks before any I/O: a target's opendal scheme
//! must be granted to the plugin (`[plugins.NAME] schemes`, never `fs`), and every key
//! must pass [`crate::object_key::object_key`].

use copra_codes::ErrorCode;
use opendal::Scheme;

use super::bindings::storage::exports::copra::plugin::storage::Target as WitTarget;
use super::error::quoted;
use super::registry::PluginKind;
use super::sandbox;
use super::{PluginError, Plugins};
use crate::object_key as key;
use crate::storage::StorageTarget;

/// Options the host sets on a target whatever the plugin said: an S3 or GCS target
/// never picks up the server's own cloud configuration, environment or instance
/// credentials (the rest of each scheme's rules: `storage::harden`).
const FORCED_OPTIONS: &[(Scheme, &str, &str)] = &[
    (Scheme::S3, "disable_config_load", "true"),
    (Scheme::S3, "disable_ec2_metadata", "true"),
    (Scheme::Gcs, "disable_config_load", "true"),
    (Scheme::Gcs, "disable_vm_metadata", "true"),
];

impl Plugins {
    /// Ask the storage plugin for `service` where a storage block's files go. An
    /// opendal target with a scheme the plugin was not granted fails with
    /// `storage_not_valid`, naming the plugin, the scheme and the grant key.
    pub async fn storage_resolve(&self, service: &str, spec_json: &str) -> Result<StorageTarget, PluginError> {
        let plugin = self.catalog.find(PluginKind::Storage, service)?;
        let target = self
            .runtime
            .call(&plugin, "resolve", async |bound, store| {
                let bindings = bound.storage()?;
                bindings.copra_plugin_storage().call_resolve(&mut *store, spec_json).await
            })
            .await?;
        Ok(match target {
            WitTarget::Opendal(t) => {
                let Some(scheme) = plugin.sandbox.granted_scheme(&t.scheme) else {
                    return Err(scheme_refused(&plugin.name, &t.scheme));
                };
                StorageTarget::Opendal { scheme: scheme.into_static().to_string(), options: forced(scheme, t.options), url_base: t.url_base }
            }
            WitTarget::Local => StorageTarget::Local,
            WitTarget::Custom => StorageTarget::Custom,
        })
    }

    /// The object key of `output_path` in a storage block, as the plugin names it and
    /// the host normalises it. A key that could leave the storage root (or is absurd)
    /// fails with `storage_path_not_valid`, naming the plugin and the key.
    pub async fn storage_object_key(&self, service: &str, spec_json: &str, output_path: &str) -> Result<String, PluginError> {
        let plugin = self.catalog.find(PluginKind::Storage, service)?;
        let raw = self
            .runtime
            .call(&plugin, "object-key", async |bound, store| {
                let bindings = bound.storage()?;
                bindings.copra_plugin_storage().call_object_key(&mut *store, spec_json, output_path).await
            })
            .await?;
        key::object_key(&raw).map_err(|why| {
            tracing::warn!(plugin = %plugin.name, key = %quoted(&raw), %why, "storage plugin answered a key the host refuses");
            PluginError::Refused {
                code: ErrorCode::StoragePathNotValid,
                message: format!(
                    "The storage plugin '{}' answered the object key {} for the path {}, which the server refuses: {why}.",
                    plugin.name,
                    quoted(&raw),
                    quoted(output_path)
                ),
            }
        })
    }
}

/// The refusal of a target whose scheme the plugin was not granted.
fn scheme_refused(plugin: &str, scheme: &str) -> PluginError {
    tracing::warn!(plugin, scheme = %quoted(scheme), "storage plugin answered a scheme it was not granted");
    let message = if sandbox::is_never_granted(scheme) {
        format!(
            "The storage plugin '{plugin}' answered an opendal target with the scheme {}, which is never granted: it would \
             read and write the server's own files (`[plugins.{plugin}] schemes` cannot include it). Files on this server \
             go through the 'local' target.",
            quoted(scheme)
        )
    } else {
        format!(
            "The storage plugin '{plugin}' answered an opendal target with the scheme {scheme}, which it was not granted. \
             The operator grants schemes in the config file: `[plugins.{plugin}] schemes = [{scheme}]`.",
            scheme = quoted(scheme)
        )
    };
    PluginError::Refused { code: ErrorCode::StorageNotValid, message }
}

/// `options` with the host's [`FORCED_OPTIONS`] for `scheme` in place of the plugin's.
fn forced(scheme: Scheme, mut options: Vec<(String, String)>) -> Vec<(String, String)> {
    for (_, name, value) in FORCED_OPTIONS.iter().filter(|(s, _, _)| *s == scheme) {
        options.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        options.push((name.to_string(), value.to_string()));
    }
    options
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_targets_never_load_the_servers_credentials() {
        let options = vec![("bucket".into(), "b".into()), ("DISABLE_CONFIG_LOAD".into(), "false".into())];
        let options = forced(Scheme::S3, options);
        let get = |name: &str| options.iter().filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).collect::<Vec<_>>();
        assert_eq!(get("disable_config_load"), ["true"]);
        assert_eq!(get("disable_ec2_metadata"), ["true"]);
        assert_eq!(get("bucket"), ["b"]);
    }

    #[test]
    fn refusals_name_the_plugin_the_scheme_and_the_grant_key() {
        let PluginError::Refused { code, message } = scheme_refused("sneaky", "gcs") else { panic!() };
        assert_eq!(code, ErrorCode::StorageNotValid);
        assert!(message.contains("'sneaky'") && message.contains("\"gcs\"") && message.contains("[plugins.sneaky] schemes"), "{message}");
        let PluginError::Refused { message, .. } = scheme_refused("sneaky", "FS") else { panic!() };
        assert!(message.contains("never granted") && message.contains("[plugins.sneaky] schemes"), "{message}");
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let target = StorageTarget::Opendal {
            scheme: "s3".into(),
            options: vec![("secret_access_key".into(), "hunter2".into())],
            url_base: "https://b.s3.amazonaws.com".into(),
        };
        let shown = format!("{target:?}");
        assert!(shown.contains("secret_access_key") && !shown.contains("hunter2"), "{shown}");
    }
}
