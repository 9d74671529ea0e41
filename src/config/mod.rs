//! Loading profiles: a YAML file, or a directory holding `profile.yaml`, optionally importing a
//! real device's data model (a GenieACS CSV export, a genieacs-sim CSV or JSON file), into an
//! immutable `model::Model` shared by every CPE.
//!
//! - [`profile`]: the YAML schema.
//! - [`import`]: what an imported file's rows mean; [`csv`] and [`json`] read them.
//!
//! Every error names the file, the key (or CSV line) and the reason, once.

pub mod csv;
pub mod import;
pub mod json;
pub mod profile;

use std::path::{Path, PathBuf};

use crate::cwmp::envelope::{urn_minor, URNS};
use crate::model::identity::{Identity, Template};
use crate::model::tree::TreeBuilder;
use crate::model::Model;

/// The example TR-181 profile, built in so the binary runs from anywhere.
pub const BUILTIN_PROFILE: &str = include_str!("../../profiles/example-tr181-gateway/profile.yaml");

/// Why a profile could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("cannot read profile {}: {source}", file.display())]
    Read { file: PathBuf, source: std::io::Error },
    #[error("profile {}{}: {reason}", file.display(), key.as_ref().map(|k| format!(", key `{k}`")).unwrap_or_default())]
    Invalid { file: PathBuf, key: Option<String>, reason: String },
}

/// The profile at `path`, or the built-in `example-tr181-gateway` without one: what `--profile`
/// (and a scenario fleet's `profile`) loads.
///
/// # Errors
/// As [`load_profile`].
pub fn load_or_builtin(path: Option<&Path>) -> Result<Model, ProfileError> {
    match path {
        Some(p) => load_profile(p),
        None => parse_profile(BUILTIN_PROFILE, Path::new("<built-in example-tr181-gateway>"), "example-tr181-gateway"),
    }
}

/// Loads a profile from a YAML file or a directory holding `profile.yaml`.
///
/// # Errors
/// [`ProfileError`] naming the file, the key and the reason.
pub fn load_profile(path: &Path) -> Result<Model, ProfileError> {
    let file = if path.is_dir() { path.join("profile.yaml") } else { path.to_path_buf() };
    let text = std::fs::read_to_string(&file).map_err(|source| ProfileError::Read { file: file.clone(), source })?;
    let default_name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("profile").to_string();
    parse_profile(&text, &file, &default_name)
}

/// Parses profile text; `file` is used for messages and to find a referenced CSV.
///
/// # Errors
/// [`ProfileError::Invalid`].
pub fn parse_profile(text: &str, file: &Path, default_name: &str) -> Result<Model, ProfileError> {
    let invalid = |key: Option<String>, reason: String| ProfileError::Invalid { file: file.to_path_buf(), key, reason };
    let doc: profile::ProfileFile = serde_norway::from_str(text).map_err(|e| {
        let at = e.location().map(|l| format!(" (line {}, column {})", l.line(), l.column())).unwrap_or_default();
        invalid(None, format!("{e}{at}"))
    })?;
    let base = file.parent().unwrap_or(Path::new("."));
    let imported = match &doc.data_model {
        Some(rel) => {
            let path = base.join(rel);
            let rows = match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
                Some("json") => json::rows(&path)?,
                _ => csv::rows(&path)?,
            };
            let imp =
                import::declarations(rows).map_err(|e| ProfileError::Invalid { file: path.clone(), key: Some(e.at), reason: e.reason })?;
            Some((path, imp))
        }
        None => None,
    };
    let first_path = doc
        .parameters
        .keys()
        .filter_map(|k| k.as_str())
        .next()
        .map(str::to_string)
        .or_else(|| imported.as_ref().and_then(|(_, c)| c.params.first().map(|p| p.path.clone())))
        .ok_or_else(|| invalid(Some("parameters".into()), "the profile declares no parameters".into()))?;
    let root = imported
        .as_ref()
        .and_then(|(_, c)| c.params.first().map(|p| p.path.clone()))
        .unwrap_or(first_path)
        .split('.')
        .next()
        .unwrap_or("Device")
        .to_string();
    let mut builder = TreeBuilder::new(&root);
    if let Some((path, c)) = &imported {
        let import_err = |key: &str, e: crate::model::tree::TreeError| ProfileError::Invalid {
            file: path.clone(),
            key: Some(key.to_string()),
            reason: e.reason(),
        };
        for o in &c.objects {
            builder.object(o).map_err(|e| import_err(&o.path, e))?;
        }
        for p in &c.params {
            builder.param(p).map_err(|e| import_err(&p.path, e))?;
        }
    }
    for (k, v) in &doc.objects {
        let key = k.as_str().ok_or_else(|| invalid(Some("objects".into()), "keys must be object paths".into()))?;
        let decl = profile::object_decl(key, v).map_err(|r| invalid(Some(format!("objects.{key}")), r))?;
        builder.object(&decl).map_err(|e| invalid(Some(format!("objects.{key}")), e.reason()))?;
    }
    for (k, v) in &doc.parameters {
        let key = k.as_str().ok_or_else(|| invalid(Some("parameters".into()), "keys must be parameter paths".into()))?;
        let decl = profile::param_decl(key, v).map_err(|r| invalid(Some(format!("parameters.{key}")), r))?;
        builder.param(&decl).map_err(|e| invalid(Some(format!("parameters.{key}")), e.reason()))?;
    }
    let tree = builder.finish().map_err(|e| invalid(Some("parameters".into()), e.to_string()))?;
    let serial = Template::compile(&doc.identity.serial, 0).map_err(|e| invalid(Some("identity.serial".into()), e.to_string()))?;
    let identity = Identity { oui: doc.identity.oui.to_ascii_uppercase().into(), seed: doc.identity.seed, serial };
    let urn = match &doc.cwmp_version {
        None => URNS[0],
        Some(v) => {
            let minor = urn_minor(v).ok_or_else(|| invalid(Some("cwmp_version".into()), format!("`{v}` is not cwmp-1-0 … cwmp-1-4")))?;
            URNS[minor as usize]
        }
    };
    let name = doc.name.clone().unwrap_or_else(|| default_name.to_string());
    let mut model = Model::new(&name, tree, identity, urn).map_err(|e| invalid(None, e.to_string()))?;
    model.get_rpc_methods_on_bootstrap = doc.get_rpc_methods_on_bootstrap;
    model.connection_request_auth = match doc.connection_request_auth.as_deref() {
        None | Some("digest") => crate::model::ConnRequestAuth::Digest,
        Some("basic") => crate::model::ConnRequestAuth::Basic,
        Some("none") => crate::model::ConnRequestAuth::None,
        Some(other) => return Err(invalid(Some("connection_request_auth".into()), format!("`{other}` is not digest, basic or none"))),
    };
    if let Some(f) = &doc.firmware {
        model.firmware = f.rule().map_err(|(key, reason)| invalid(Some(key), reason))?;
    }
    if let Some(d) = &doc.diagnostics {
        d.check().map_err(|(key, reason)| invalid(Some(key.into()), reason))?;
        model.diagnostics = d.clone();
    }
    Ok(model)
}
