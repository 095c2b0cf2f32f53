//! The configuration layering `riskstream run` and `riskstream enforce`
//! share: built-in defaults, then the TOML file, then `<PREFIX>SECTION__FIELD`
//! environment variables, then command-line flags, and the error either
//! reports. One loader serves both so that their precedence and their
//! reading of variables cannot drift apart; each keeps its own prefix,
//! sections and checks.

use std::collections::BTreeMap;
use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format as _, Serialized, Toml};
use figment::value::Value;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file, a variable or a flag does not parse, or names an unknown
    /// setting.
    #[error("configuration: {0}")]
    Load(Box<figment::Error>),
    /// A value that parses but breaks a rule.
    #[error("configuration: {field} = {value:?}: {reason}")]
    Invalid {
        /// The setting, as `section.field`.
        field: String,
        /// Its value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// A [`ConfigError::Invalid`] naming `field`, its `value` and the rule.
pub(crate) fn invalid(field: &str, value: impl ToString, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        field: field.to_owned(),
        value: value.to_string(),
        reason: reason.to_owned(),
    }
}

/// A flag given on the command line: the setting it overrides, as
/// `section.field`, and its value; `None` when the flag is absent.
pub(crate) type Flag = (&'static str, Option<Value>);

/// `--brokers`, `--group-id` and `--http-listen`, which both services take
/// for the same settings.
pub(crate) fn service_flags(
    brokers: Option<&str>,
    group_id: Option<&str>,
    http_listen: Option<&str>,
) -> [Flag; 3] {
    [
        ("kafka.brokers", brokers.map(Value::from)),
        ("kafka.group_id", group_id.map(Value::from)),
        ("http.listen", http_listen.map(Value::from)),
    ]
}

/// Defaults, then `file`, then `<env_prefix>SECTION__FIELD` variables, then
/// `flags`, extracted into `T`.
pub(crate) fn load<T: Default + Serialize + DeserializeOwned>(
    file: Option<&Path>,
    env_prefix: &str,
    flags: impl IntoIterator<Item = Flag>,
) -> Result<T, ConfigError> {
    let mut figment = Figment::from(Serialized::defaults(T::default()));
    if let Some(path) = file {
        figment = figment.merge(Toml::file_exact(path));
    }
    // Only SECTION__FIELD names: RISKSTREAM_LOG and the test switches are
    // not settings.
    figment = figment.merge(
        Env::prefixed(env_prefix)
            .filter(|k| k.as_str().contains("__"))
            .split("__"),
    );
    for (key, value) in flags {
        if let Some(value) = value {
            figment = figment.merge(Serialized::default(key, value));
        }
    }
    figment
        .extract()
        .map_err(|e| ConfigError::Load(Box::new(e)))
}

/// Checks `kafka.brokers` and `kafka.group_id`, which both services need
/// non-empty.
pub(crate) fn check_brokers_and_group(brokers: &str, group_id: &str) -> Result<(), ConfigError> {
    if brokers.trim().is_empty() {
        return Err(invalid("kafka.brokers", "", "no broker address"));
    }
    if group_id.trim().is_empty() {
        return Err(invalid("kafka.group_id", "", "empty group id"));
    }
    Ok(())
}

/// Refuses, in the `section` of librdkafka `properties`, any of `owned`:
/// the properties the service sets itself, for the reason given.
pub(crate) fn refuse_owned_properties(
    section: &str,
    properties: &BTreeMap<String, String>,
    owned: &[&str],
    reason: &str,
) -> Result<(), ConfigError> {
    match properties
        .iter()
        .find(|(key, _)| owned.contains(&key.as_str()))
    {
        Some((key, value)) => Err(invalid(&format!("{section}.\"{key}\""), value, reason)),
        None => Ok(()),
    }
}

/// Asserts that the documented example `example` (a path from the
/// repository root) loads, through `load`, to exactly the defaults, and that
/// it writes out every setting; returns its text for further checks.
#[cfg(test)]
#[allow(clippy::result_large_err)] // figment's Jail closures return its error
pub(crate) fn assert_example_holds_every_default<T: Default + Serialize + std::fmt::Debug>(
    example: &str,
    load: impl FnOnce(&Path) -> Result<T, ConfigError>,
) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(example);
    // In a jail: the other tests' variables stay out while it reads.
    let mut loaded = None;
    figment::Jail::expect_with(|_| {
        loaded = Some(load(&path).unwrap());
        Ok(())
    });
    let loaded = loaded.unwrap();
    assert_eq!(
        format!("{loaded:?}"),
        format!("{:?}", T::default()),
        "{example} and the defaults disagree"
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let defaults = toml::to_string(&T::default()).unwrap();
    for line in defaults.lines().filter(|l| l.contains(" = ")) {
        let key = line.split(" = ").next().unwrap();
        assert!(
            text.contains(&format!("{key} = ")),
            "{key} is not documented"
        );
    }
    text
}
