//! Real devices as data models: the rows of a GenieACS CSV export, a genieacs-sim CSV or a
//! genieacs-sim JSON file (read by `config::csv` and `config::json`) turned into tree
//! declarations, taking the files as they are.
//!
//! - Rows under `DeviceID.` describe the Inform identity GenieACS recorded, not the data model;
//!   other GenieACS bookkeeping (`Events.`, `Tags.`, …: anything outside the data-model root) is
//!   left out. The identity itself comes from the profile: `DeviceInfo.SerialNumber` becomes
//!   `{serial}` and `DeviceInfo.ManufacturerOUI` `{oui}`; Manufacturer and ProductClass come from
//!   the data model, or from `DeviceID.` when the model lacks them or left them empty (never
//!   read).
//! - An object is a table when the file has numbered instances under it. An object row's Writable
//!   says whether AddObject/DeleteObject are allowed on a table (the instance rows' when the table
//!   row is missing), not whether it is one: devices report writable single objects too
//!   (`DeviceInfo`, `BulkData`), and a writable object with nothing under it stays an empty
//!   object (a table the file shows no instance of cannot be told from one).
//! - Values are the device's real answers and are kept as they are, even when they do not fit
//!   their type (an empty dateTime, a boolean `2`); writes from the ACS are checked as usual.
//! - A Notification column (GenieACS exports) becomes the parameter's notification attribute.
//! - The parameters TR-098/TR-181 force into every Inform (DeviceSummary, SoftwareVersion,
//!   ConnectionRequestURL, ParameterKey, …) are forced where the model has them.
//! - `DeviceInfo.UpTime` counts from each CPE's boot, and `<Table>NumberOfEntries` counts its
//!   sibling table's instances, so AddObject/DeleteObject show in them.
//!
//! No I/O: the readers pass rows in.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::tree::{DynamicDecl, Notification, ObjectDecl, ParamDecl};
use crate::model::types::ParamType;

/// One row of an imported file.
#[derive(Debug, Clone, Default)]
pub struct Row {
    /// Where it was (`line 12`, `key "…"`), for errors.
    pub at: String,
    /// The path as written (objects with or without the trailing `.`).
    pub path: String,
    pub object: bool,
    /// `None`: the file does not say.
    pub writable: Option<bool>,
    pub value: String,
    /// The `xsi:type` as written (`xsd:unsignedInt`); empty: none given.
    pub ty: String,
    /// The Notification column (GenieACS exports): `0`, `1`, `2` or empty.
    pub notification: String,
}

/// What the Inform's DeviceId said when GenieACS recorded the device (`DeviceID.` rows).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceIdRows {
    pub manufacturer: Option<String>,
    pub oui: Option<String>,
    pub product_class: Option<String>,
    pub serial_number: Option<String>,
}

/// Declarations for the tree builder, and what the file said about the device.
#[derive(Debug, Default)]
pub struct Imported {
    pub objects: Vec<ObjectDecl>,
    pub params: Vec<ParamDecl>,
    pub device_id: DeviceIdRows,
    /// Rows outside the data model that were left out (GenieACS's `Events.`, `Tags.`, …).
    pub skipped: usize,
}

/// Why a file cannot be imported: where, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportError {
    pub at: String,
    pub reason: String,
}

/// Parameters every Inform carries where the model has them (BBF `forcedInform`, TR-098 and
/// TR-181; relative to the root): an imported device informs as the real one did.
const FORCED_INFORM: &[&str] = &[
    "DeviceSummary",
    "RootDataModelVersion",
    "DeviceInfo.SpecVersion",
    "DeviceInfo.HardwareVersion",
    "DeviceInfo.SoftwareVersion",
    "DeviceInfo.ProvisioningCode",
    "ManagementServer.ConnectionRequestURL",
    "ManagementServer.ParameterKey",
    "ManagementServer.AliasBasedAddressing",
];

/// Longest parameter or object path a file may hold, in characters: CWMP carries parameter names
/// as string(256) (TR-069 Amd 6, A.3.2.1). Longer paths are refused as the rows are read, which
/// also bounds the work per row (every prefix of a path is looked at).
pub const MAX_PATH_CHARS: usize = 256;

/// Refuses a path longer than [`MAX_PATH_CHARS`]; the reason shows its start only.
///
/// # Errors
/// The reason, naming the limit.
pub fn check_path_len(path: &str) -> Result<(), String> {
    let len = path.trim().chars().count();
    if len <= MAX_PATH_CHARS {
        return Ok(());
    }
    let start: String = path.trim().chars().take(60).collect();
    Err(format!(
        "the path `{start}…` is {len} characters long; parameter and object paths are at most {MAX_PATH_CHARS} characters (CWMP string(256))"
    ))
}

fn is_number(seg: &str) -> bool {
    !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit())
}

/// Turns rows into declarations (see the module doc for the rules).
///
/// # Errors
/// A row with an unknown value type, or a file with no data-model root (`Device.` or
/// `InternetGatewayDevice.`).
pub fn declarations(rows: Vec<Row>) -> Result<Imported, ImportError> {
    let mut out = Imported::default();
    let root = rows
        .iter()
        .filter_map(|r| r.path.split('.').next())
        .find(|r| *r == "Device" || *r == "InternetGatewayDevice")
        .ok_or_else(|| ImportError { at: "the file".into(), reason: "no row under `Device.` or `InternetGatewayDevice.`".into() })?
        .to_string();
    // Object paths, with whether they are writable and the row that named them.
    let mut objects: BTreeMap<String, (Option<bool>, String)> = BTreeMap::new();
    let mut params: Vec<Row> = Vec::new();
    for mut row in rows {
        let path = row.path.trim().trim_end_matches('.').to_string();
        let first = path.split('.').next().unwrap_or("");
        if first == "DeviceID" {
            let slot = match path.as_str() {
                "DeviceID.Manufacturer" => &mut out.device_id.manufacturer,
                "DeviceID.OUI" => &mut out.device_id.oui,
                "DeviceID.ProductClass" => &mut out.device_id.product_class,
                "DeviceID.SerialNumber" => &mut out.device_id.serial_number,
                _ => continue,
            };
            *slot = Some(row.value.clone());
            continue;
        }
        if first != root {
            out.skipped += 1;
            continue;
        }
        if path == root {
            continue;
        }
        row.path = path;
        if row.object || row.path.ends_with('.') {
            objects.insert(row.path.clone(), (row.writable, row.at.clone()));
        } else {
            params.push(row);
        }
    }
    // Every prefix that holds something, and the tables: objects with numbered children (each
    // with the first row that shows an instance of it). Below a table come instances only.
    let mut has_children: BTreeSet<String> = BTreeSet::new();
    let mut tables: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut named_children: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut instance_writable: BTreeMap<String, bool> = BTreeMap::new();
    let entries = objects.iter().map(|(p, (_, at))| (p, at)).chain(params.iter().map(|r| (&r.path, &r.at)));
    for (path, at) in entries {
        let mut segs = path.split('.');
        let mut end = segs.next().map_or(0, str::len);
        for seg in segs {
            let prefix = &path[..end];
            let seen = if is_number(seg) { &mut tables } else { &mut named_children };
            if !seen.contains_key(prefix) {
                seen.insert(prefix.to_string(), (path.clone(), at.clone()));
            }
            if !has_children.contains(prefix) {
                has_children.insert(prefix.to_string());
            }
            end += 1 + seg.len();
        }
    }
    for (table, (instance_path, instance_at)) in &tables {
        if let Some((path, at)) = named_children.get(table) {
            return Err(ImportError {
                at: at.clone(),
                reason: format!(
                    "`{table}` is a table ({instance_at} has `{instance_path}`): `{path}` must be under an instance (`{table}.1.…`)"
                ),
            });
        }
    }
    for (path, (writable, _)) in &objects {
        if let Some((table, last)) = path.rsplit_once('.') {
            if is_number(last) && writable.unwrap_or(false) {
                instance_writable.insert(table.to_string(), true);
            }
        }
    }
    for table in tables.keys() {
        let writable = match objects.get(table) {
            Some((w, _)) => w.unwrap_or(false),
            None => instance_writable.contains_key(table),
        };
        out.objects.push(ObjectDecl { path: format!("{table}."), writable: Some(writable), max_instances: None });
    }
    // Objects with nothing below them still exist (an instance with no parameters, an empty
    // single object).
    for path in objects.keys() {
        if !has_children.contains(path) && !tables.contains_key(path) {
            out.objects.push(ObjectDecl { path: format!("{path}."), writable: None, max_instances: None });
        }
    }
    let device_info = format!("{root}.DeviceInfo.");
    let mut seen_identity = [false; 4];
    const IDENTITY: [&str; 4] = ["Manufacturer", "ManufacturerOUI", "ProductClass", "SerialNumber"];
    for row in params {
        let ty = match row.ty.trim() {
            "" => None,
            t => Some(ParamType::from_name(t).ok_or_else(|| ImportError {
                at: row.at.clone(),
                reason: format!(
                    "`{}` has the unknown value type `{t}` (known: xsd:string, int, unsignedInt, long, unsignedLong, boolean, dateTime, base64, hexBinary)",
                    row.path
                ),
            })?),
        };
        let leaf = row.path.rsplit('.').next().unwrap_or("");
        let parent = &row.path[..row.path.len() - leaf.len()];
        let mut decl = ParamDecl {
            path: row.path.clone(),
            ty,
            writable: row.writable,
            value: Some(escape_braces(&row.value)),
            notification: match row.notification.trim() {
                "1" => Some(Notification::Passive),
                "2" => Some(Notification::Active),
                "0" => Some(Notification::Off),
                _ => None,
            },
            reported: true,
            ..Default::default()
        };
        if let Some(i) = IDENTITY.iter().position(|n| parent == device_info && leaf == *n) {
            seen_identity[i] = true;
            // An empty Manufacturer/ProductClass was never read by GenieACS; the Inform said it.
            let inform = match *IDENTITY.get(i).unwrap_or(&"") {
                "SerialNumber" => Some("{serial}".to_string()),
                "ManufacturerOUI" => Some("{oui}".to_string()),
                "Manufacturer" if row.value.is_empty() => out.device_id.manufacturer.as_deref().map(escape_braces),
                "ProductClass" if row.value.is_empty() => out.device_id.product_class.as_deref().map(escape_braces),
                _ => None,
            };
            if inform.is_some() {
                decl.value = inform;
            }
        }
        let relative = &row.path[root.len() + 1..];
        if FORCED_INFORM.contains(&relative) {
            decl.forced_inform = Some(true);
        }
        if parent == device_info && leaf == "UpTime" {
            decl.value = None;
            decl.dynamic = Some(DynamicDecl::Uptime);
        }
        if let Some(table) = leaf.strip_suffix("NumberOfEntries").map(|t| format!("{parent}{t}")) {
            if tables.contains_key(&table) {
                decl.value = None;
                decl.dynamic = Some(DynamicDecl::EntryCount { table: format!("{table}.") });
            }
        }
        out.params.push(decl);
    }
    // The Inform needs these; a model that lacks one takes it from `DeviceID.`.
    let fallback = [
        out.device_id.manufacturer.clone().map(|v| escape_braces(&v)),
        Some("{oui}".into()),
        out.device_id.product_class.clone().map(|v| escape_braces(&v)),
        Some("{serial}".into()),
    ];
    for ((name, seen), value) in IDENTITY.iter().zip(seen_identity).zip(fallback) {
        if let (false, Some(value)) = (seen, value) {
            out.params.push(ParamDecl { path: format!("{device_info}{name}"), value: Some(value), reported: true, ..Default::default() });
        }
    }
    Ok(out)
}

/// Imported values are literal: protect braces from the template syntax.
pub fn escape_braces(s: &str) -> String {
    s.replace('{', "{{").replace('}', "}}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(path: &str, object: bool, writable: bool, value: &str, ty: &str) -> Row {
        Row {
            at: "line 1".into(),
            path: path.into(),
            object,
            writable: Some(writable),
            value: value.into(),
            ty: ty.into(),
            ..Default::default()
        }
    }

    #[test]
    fn the_import_rules() {
        let rows = vec![
            row("DeviceID.Manufacturer", false, false, "Acme {Labs}", "xsd:string"),
            row("DeviceID.OUI", false, false, "202BC1", "xsd:string"),
            row("DeviceID.SerialNumber", false, false, "REAL-SERIAL", "xsd:string"),
            row("Events.Inform", false, false, "2023-05-26T00:47:16.024Z", "xsd:dateTime"),
            row("InternetGatewayDevice", true, false, "", ""),
            row("InternetGatewayDevice.DeviceInfo", true, true, "", ""),
            row("InternetGatewayDevice.DeviceInfo.SerialNumber", false, false, "REAL-SERIAL", "xsd:string"),
            row("InternetGatewayDevice.DeviceInfo.ProductClass", false, false, "BM632w", "xsd:string"),
            row("InternetGatewayDevice.DeviceInfo.FirstUseDate", false, false, "", "xsd:dateTime"),
            row("InternetGatewayDevice.LANDevice.1.Hosts.Host", true, false, "", ""),
            row("InternetGatewayDevice.LANDevice.1.Hosts.Host.1", true, false, "", ""),
            row("InternetGatewayDevice.LANDevice.1.Hosts.Host.1.HostName", false, false, "laptop", "xsd:string"),
            row("InternetGatewayDevice.LANDevice.1.Hosts.HostNumberOfEntries", false, false, "1", "xsd:unsignedInt"),
            row("InternetGatewayDevice.LANDevice.1.Hosts.X_Filter", true, true, "", ""),
        ];
        let imp = declarations(rows).unwrap();
        assert_eq!(imp.skipped, 1, "Events.");
        assert_eq!(imp.device_id.serial_number.as_deref(), Some("REAL-SERIAL"));
        let obj = |p: &str| imp.objects.iter().find(|o| o.path == p).map(|o| o.writable);
        assert_eq!(obj("InternetGatewayDevice.LANDevice.1.Hosts.Host."), Some(Some(false)), "a read-only table");
        assert_eq!(obj("InternetGatewayDevice.LANDevice."), Some(Some(false)));
        assert_eq!(obj("InternetGatewayDevice.DeviceInfo."), None, "a writable single object is no table");
        assert_eq!(obj("InternetGatewayDevice.LANDevice.1.Hosts.X_Filter."), Some(None), "an empty writable object stays an object");
        let param = |p: &str| imp.params.iter().find(|d| d.path == p).unwrap();
        assert_eq!(param("InternetGatewayDevice.DeviceInfo.SerialNumber").value.as_deref(), Some("{serial}"));
        assert_eq!(param("InternetGatewayDevice.DeviceInfo.ManufacturerOUI").value.as_deref(), Some("{oui}"), "from DeviceID");
        assert_eq!(param("InternetGatewayDevice.DeviceInfo.Manufacturer").value.as_deref(), Some("Acme {{Labs}}"));
        assert!(param("InternetGatewayDevice.DeviceInfo.FirstUseDate").reported);
        assert_eq!(
            param("InternetGatewayDevice.LANDevice.1.Hosts.HostNumberOfEntries").dynamic,
            Some(DynamicDecl::EntryCount { table: "InternetGatewayDevice.LANDevice.1.Hosts.Host.".into() })
        );
        let bad = vec![row("Device.X", false, false, "1", "xsd:float")];
        assert!(declarations(bad).unwrap_err().reason.contains("unknown value type `xsd:float`"));
        assert!(declarations(vec![row("Events.Inform", false, false, "", "")]).is_err());
    }
}
