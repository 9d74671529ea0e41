//! Importing a genieacs-sim style CSV data model (`Parameter,Object,Writable,Value,Value type`)
//! into tree declarations, so existing genieacs-sim device dumps can be reused as profiles.

use std::path::Path;

use crate::model::tree::{ObjectDecl, ParamDecl};
use crate::model::types::ParamType;

use super::ProfileError;

/// Declarations read from one CSV file.
pub struct CsvModel {
    pub objects: Vec<ObjectDecl>,
    pub params: Vec<ParamDecl>,
}

fn truthy(s: &str) -> bool {
    matches!(s.trim(), "true" | "TRUE" | "True" | "1")
}

/// Reads `path`.
///
/// # Errors
/// The file cannot be read, lacks the expected columns, or has a bad row (named by line).
pub fn load(path: &Path) -> Result<CsvModel, ProfileError> {
    let err = |key: Option<String>, reason: String| ProfileError::Invalid { file: path.to_path_buf(), key, reason };
    let mut rdr = csv::ReaderBuilder::new().flexible(true).from_path(path).map_err(|e| err(None, e.to_string()))?;
    let headers = rdr.headers().map_err(|e| err(None, e.to_string()))?.clone();
    let col = |name: &str| headers.iter().position(|h| h.trim().eq_ignore_ascii_case(name));
    let (Some(c_param), Some(c_obj), Some(c_w)) = (col("Parameter"), col("Object"), col("Writable")) else {
        return Err(err(None, "expected a header `Parameter,Object,Writable,Value,Value type`".into()));
    };
    let (c_val, c_ty) = (col("Value"), col("Value type"));
    let mut out = CsvModel { objects: Vec::new(), params: Vec::new() };
    for (i, rec) in rdr.records().enumerate() {
        let line = i + 2;
        let rec = rec.map_err(|e| err(Some(format!("line {line}")), e.to_string()))?;
        let get = |c: Option<usize>| c.and_then(|c| rec.get(c)).unwrap_or("").to_string();
        let name = get(Some(c_param));
        if name.trim().is_empty() {
            continue;
        }
        let writable = truthy(&get(Some(c_w)));
        if truthy(&get(Some(c_obj))) || name.ends_with('.') {
            // genieacs-sim marks writable tables (AddObject allowed) and their instances.
            let is_table = !name.trim_end_matches('.').rsplit('.').next().unwrap_or("").bytes().all(|b| b.is_ascii_digit());
            out.objects.push(ObjectDecl { path: name, writable: (writable && is_table).then_some(true), max_instances: None });
            continue;
        }
        let ty_text = get(c_ty);
        let ty = if ty_text.trim().is_empty() {
            None
        } else {
            Some(
                ParamType::from_name(ty_text.trim())
                    .ok_or_else(|| err(Some(format!("line {line}")), format!("unknown value type `{ty_text}`")))?,
            )
        };
        out.params.push(ParamDecl {
            path: name,
            ty,
            writable: Some(writable),
            value: Some(escape_braces(&get(c_val))),
            ..Default::default()
        });
    }
    Ok(out)
}

/// CSV values are literal: protect braces from the template syntax.
fn escape_braces(s: &str) -> String {
    s.replace('{', "{{").replace('}', "}}")
}
