//! Reading a genieacs-sim JSON data model (`{"Root.Object.": [writable], "Root.Param": [writable,
//! value, "xsd:type"], …}`, the format genieacs-sim read before its CSV support) into
//! [`import::Row`](super::import::Row)s. What the rows mean is `config::import`'s.

use std::path::Path;

use super::import::Row;
use super::ProfileError;

/// Reads the rows of the JSON file at `path`, in file order.
///
/// # Errors
/// The file cannot be read or parsed, or an entry is not `[bool]` / `[bool, value, type]`
/// (named by key), or a key longer than [`MAX_PATH_CHARS`](super::import::MAX_PATH_CHARS).
pub fn rows(path: &Path) -> Result<Vec<Row>, ProfileError> {
    let err = |key: Option<String>, reason: String| ProfileError::Invalid { file: path.to_path_buf(), key, reason };
    let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Read { file: path.to_path_buf(), source })?;
    // serde_json keeps the file's order only with `preserve_order`; the tree is built from
    // sorted paths anyway, so a map's order is enough.
    let doc: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text).map_err(|e| err(None, e.to_string()))?;
    let mut out = Vec::with_capacity(doc.len());
    for (key, v) in doc {
        super::import::check_path_len(&key).map_err(|r| err(Some(format!("key \"{}…\"", key.chars().take(60).collect::<String>())), r))?;
        let bad = || err(Some(key.clone()), "expected [writable] for an object or [writable, value, type] for a parameter".into());
        let list = v.as_array().ok_or_else(bad)?;
        let writable = list.first().and_then(|w| w.as_bool()).ok_or_else(bad)?;
        let text = |i: usize| -> Result<String, ProfileError> {
            Ok(match list.get(i) {
                None | Some(serde_json::Value::Null) => String::new(),
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(serde_json::Value::Bool(b)) => b.to_string(),
                Some(serde_json::Value::Number(n)) => n.to_string(),
                Some(_) => return Err(bad()),
            })
        };
        out.push(Row {
            at: format!("key \"{key}\""),
            object: key.ends_with('.'),
            writable: Some(writable),
            value: text(1)?,
            ty: text(2)?,
            notification: String::new(),
            path: key,
        });
    }
    Ok(out)
}
