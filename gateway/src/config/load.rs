//! Reading the configuration: the TOML file, then `DISPATCHD_<SECTION>_<KEY>`
//! overrides from the environment, then [`Config::validate`].

use std::collections::BTreeMap;
use std::path::Path;

use super::{invalid, Config, ConfigError};

impl Config {
    /// Reads `path` (a missing file is an error only when it was named
    /// explicitly), applies environment overrides and validates.
    pub fn load(
        path: &Path,
        explicit: bool,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => String::new(),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })
            }
        };
        Config::from_parts(&text, env)
    }

    /// Parses TOML text, applies `DISPATCHD_<SECTION>_<KEY>` overrides from
    /// `env`, and validates.
    pub fn from_parts(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::Parse(e.to_string()))?;
        let defaults = toml::Table::try_from(Config::default()).expect("defaults serialise");
        let mut overrides: BTreeMap<String, String> = BTreeMap::new();
        for (k, v) in env {
            if let Some(rest) = k.strip_prefix("DISPATCHD_") {
                if rest != "CONFIG" {
                    overrides.insert(rest.to_ascii_lowercase(), v);
                }
            }
        }
        for (name, value) in overrides {
            let var = format!("DISPATCHD_{}", name.to_ascii_uppercase());
            let (section, key) = split_env_name(&name, &defaults)
                .ok_or_else(|| invalid(&var, "no such configuration key"))?;
            let current = defaults
                .get(section)
                .and_then(|s| s.as_table())
                .and_then(|s| s.get(key));
            let optional = section == "redis" && key == "url";
            if current.is_none() && !optional {
                return Err(invalid(&var, "no such configuration key"));
            }
            let value = match current {
                // Strings (and the optional redis url) take the text as is.
                Some(toml::Value::String(_)) | None => toml::Value::String(value),
                Some(_) => parse_scalar(&value)
                    .ok_or_else(|| invalid(&var, format!("cannot parse {value:?}")))?,
            };
            let entry = table
                .entry(section.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let toml::Value::Table(t) = entry else {
                return Err(invalid(section, "must be a table"));
            };
            t.insert(key.to_string(), value);
        }
        let cfg: Config = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Parse(e.to_string().trim().to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }
}

/// `server_addr` → (`server`, `addr`), by the sections that exist.
fn split_env_name<'a>(name: &'a str, defaults: &toml::Table) -> Option<(&'a str, &'a str)> {
    let sections = defaults.keys().map(String::as_str).chain(["redis"]);
    for s in sections {
        if let Some(key) = name.strip_prefix(s).and_then(|r| r.strip_prefix('_')) {
            if !key.is_empty() {
                return Some((&name[..s.len()], key));
            }
        }
    }
    None
}

fn parse_scalar(v: &str) -> Option<toml::Value> {
    let v = v.trim();
    if let Ok(b) = v.parse::<bool>() {
        return Some(toml::Value::Boolean(b));
    }
    if let Ok(i) = v.parse::<i64>() {
        return Some(toml::Value::Integer(i));
    }
    v.parse::<f64>().ok().map(toml::Value::Float)
}
