//! Reading a data model from CSV: a GenieACS export (`Parameter,Object,Object timestamp,Writable,
//! Writable timestamp,Value,Value type,Value timestamp,Notification,…`) or a genieacs-sim file
//! (`Parameter,Object,Writable,Value,Value type`), columns found by name, into
//! [`import::Row`](super::import::Row)s. What the rows mean is `config::import`'s.

use std::path::Path;

use super::import::Row;
use super::ProfileError;

fn truthy(s: &str) -> Option<bool> {
    match s.trim() {
        "true" | "TRUE" | "True" | "1" => Some(true),
        "false" | "FALSE" | "False" | "0" => Some(false),
        _ => None,
    }
}

/// Reads the rows of the CSV file at `path`.
///
/// # Errors
/// The file cannot be read, lacks the `Parameter`, `Object` and `Writable` columns, or has a row
/// the CSV reader refuses or a path longer than
/// [`MAX_PATH_CHARS`](super::import::MAX_PATH_CHARS) (named by line).
pub fn rows(path: &Path) -> Result<Vec<Row>, ProfileError> {
    let err = |key: Option<String>, reason: String| ProfileError::Invalid { file: path.to_path_buf(), key, reason };
    let mut rdr = csv::ReaderBuilder::new().flexible(true).from_path(path).map_err(|e| err(None, e.to_string()))?;
    let headers = rdr.headers().map_err(|e| err(None, e.to_string()))?.clone();
    let col = |name: &str| headers.iter().position(|h| h.trim().trim_start_matches('\u{feff}').eq_ignore_ascii_case(name));
    let (Some(c_param), Some(c_obj), Some(c_w)) = (col("Parameter"), col("Object"), col("Writable")) else {
        return Err(err(
            None,
            "expected a header with Parameter, Object and Writable columns (a GenieACS export or a genieacs-sim CSV)".into(),
        ));
    };
    let (c_val, c_ty, c_notify) = (col("Value"), col("Value type"), col("Notification"));
    let mut out = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let line = i + 2;
        let rec = rec.map_err(|e| err(Some(format!("line {line}")), e.to_string()))?;
        let get = |c: Option<usize>| c.and_then(|c| rec.get(c)).unwrap_or("").to_string();
        let path = get(Some(c_param));
        if path.trim().is_empty() {
            continue;
        }
        super::import::check_path_len(&path).map_err(|r| err(Some(format!("line {line}")), r))?;
        out.push(Row {
            at: format!("line {line}"),
            object: truthy(&get(Some(c_obj))).unwrap_or(false),
            writable: truthy(&get(Some(c_w))),
            value: get(c_val),
            ty: get(c_ty),
            notification: get(c_notify),
            path,
        });
    }
    Ok(out)
}
