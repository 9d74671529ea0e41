//! Tables at any depth (issue 11 item 4): AddObject/DeleteObject on nested multi-instance tables
//! (`A.{i}.B.{i}.C.{i}.`), property-tested against a plain reference model of the tree, and an ACS
//! session over real sockets adding and deleting nested instances.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use cpe_sim::config::parse_profile;
use cpe_sim::model::device::SpvEntry;
use cpe_sim::model::{Delta, DeviceId, DeviceMut, Model, NodeKind, ReadFor};
use cpe_sim::time::UnixMillis;
use proptest::prelude::*;

use crate::support::raw::{http, RawAcs, RawReply};
use crate::support::{acs_envelope, inform_response, test_transport, texts, OneCpe};

/// Two table trees of the same shape (`A` and `D`), three levels deep, with profile instances
/// under both: a delete in one must never touch the other.
pub const NESTED: &str = r#"
identity: {oui: 0A1B2C}
objects:
  Device.A.: {writable: true}
  Device.A.{i}.B.: {writable: true}
  Device.A.{i}.B.{i}.C.: {writable: true}
  Device.D.: {writable: true}
  Device.D.{i}.B.: {writable: true}
  Device.D.{i}.B.{i}.C.: {writable: true}
parameters:
  Device.DeviceInfo.Manufacturer: Acme
  Device.DeviceInfo.ManufacturerOUI: 0A1B2C
  Device.DeviceInfo.ProductClass: Nested
  Device.DeviceInfo.SerialNumber: "{serial}"
  Device.ManagementServer.InstanceWildcardsSupported: {type: boolean, value: true}
  Device.ManagementServer.ParameterKey: ""
  Device.A.1.Name: a1
  Device.A.1.BNumberOfEntries: {dynamic: {entries: Device.A.1.B.}}
  Device.A.1.B.1.C.1.X: {type: unsignedInt, value: 11, writable: true}
  Device.A.1.B.1.C.2.X: {type: unsignedInt, value: 12, writable: true}
  Device.A.1.B.2.C.1.X: {type: unsignedInt, value: 21, writable: true}
  Device.A.2.Name: a2
  Device.D.1.Name: d1
  Device.D.1.BNumberOfEntries: {dynamic: {entries: Device.D.1.B.}}
  Device.D.1.B.1.C.1.X: {type: unsignedInt, value: 31, writable: true}
"#;

pub fn nested_model() -> Model {
    parse_profile(NESTED, Path::new("nested.yaml"), "nested").unwrap_or_else(|e| panic!("{e}"))
}

/// The plain reference: which instance paths exist, the highest number each table path ever
/// used, and the X values set.
#[derive(Debug, Clone)]
struct Reference {
    instances: BTreeSet<String>,
    high_water: BTreeMap<String, u32>,
    values: BTreeMap<String, String>,
}

impl Reference {
    fn new() -> Reference {
        let mut r = Reference { instances: BTreeSet::new(), high_water: BTreeMap::new(), values: BTreeMap::new() };
        for (i, x) in
            [("Device.A.1.B.1.C.1.", "11"), ("Device.A.1.B.1.C.2.", "12"), ("Device.A.1.B.2.C.1.", "21"), ("Device.D.1.B.1.C.1.", "31")]
        {
            r.values.insert(format!("{i}X"), x.into());
        }
        for i in [
            "Device.A.1.",
            "Device.A.1.B.1.",
            "Device.A.1.B.1.C.1.",
            "Device.A.1.B.1.C.2.",
            "Device.A.1.B.2.",
            "Device.A.1.B.2.C.1.",
            "Device.A.2.",
            "Device.D.1.",
            "Device.D.1.B.1.",
            "Device.D.1.B.1.C.1.",
        ] {
            r.insert(i);
        }
        r
    }

    fn insert(&mut self, inst: &str) {
        let (table, n) = split_instance(inst);
        let hw = self.high_water.entry(table.to_string()).or_insert(0);
        *hw = (*hw).max(n);
        self.instances.insert(inst.to_string());
        if inst.matches('.').count() == 7 {
            // A C instance: its X starts at the type's zero unless the profile gave one.
            self.values.entry(format!("{inst}X")).or_insert_with(|| "0".into());
        }
    }

    /// Every table path an AddObject may name now.
    fn tables(&self) -> Vec<String> {
        let mut out = vec!["Device.A.".to_string(), "Device.D.".to_string()];
        for i in &self.instances {
            match i.matches('.').count() {
                3 => out.push(format!("{i}B.")),
                5 => out.push(format!("{i}C.")),
                _ => {}
            }
        }
        out
    }

    fn add(&mut self, table: &str) -> u32 {
        let n = self.high_water.get(table).copied().unwrap_or(0) + 1;
        self.insert(&format!("{table}{n}."));
        n
    }

    fn delete(&mut self, inst: &str) {
        self.instances.retain(|i| !i.starts_with(inst));
        self.values.retain(|k, _| !k.starts_with(inst));
    }
}

/// `Device.A.1.B.2.` → (`Device.A.1.B.`, 2).
fn split_instance(inst: &str) -> (&str, u32) {
    let body = inst.trim_end_matches('.');
    let dot = body.rfind('.').unwrap();
    (&inst[..=dot], body[dot + 1..].parse().unwrap())
}

#[derive(Debug, Clone)]
enum Op {
    Add(usize),
    Delete(usize),
    /// Deleting a path that existed once (or never): 9005, nothing changes.
    DeleteGone(usize),
    Set(usize, u32),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => any::<usize>().prop_map(Op::Add),
        2 => any::<usize>().prop_map(Op::Delete),
        1 => any::<usize>().prop_map(Op::DeleteGone),
        2 => (any::<usize>(), 0u32..1000).prop_map(|(i, v)| Op::Set(i, v)),
    ]
}

/// What the CPE shows: instance paths (GPN of the whole tree), X values (GPV with wildcards),
/// and the entry counts.
fn observed(model: &Model, delta: &Delta) -> (BTreeSet<String>, BTreeMap<String, String>) {
    let dev = model.device(DeviceId(0), delta, UnixMillis(0), UnixMillis(0));
    let instances = dev
        .gpn("Device.", false)
        .unwrap()
        .into_iter()
        .filter(|(loc, _)| matches!(model.tree.node(loc.node).kind, NodeKind::Instance))
        .map(|(loc, _)| model.tree.path_string(&loc))
        .filter(|p| p.starts_with("Device.A.") || p.starts_with("Device.D."))
        .collect();
    let mut values = BTreeMap::new();
    for root in ["Device.A.*.B.*.C.*.X", "Device.D.*.B.*.C.*.X"] {
        for loc in dev.gpv_targets(&[root]).unwrap() {
            values.insert(model.tree.path_string(&loc), dev.value_string(&loc, ReadFor::Acs));
        }
    }
    (instances, values)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn nested_add_delete_match_a_plain_tree(ops in proptest::collection::vec(op(), 1..40)) {
        let model = nested_model();
        let mut delta = Delta::default();
        let mut reference = Reference::new();
        let mut gone: Vec<String> = vec!["Device.A.9.".into(), "Device.D.1.B.7.C.1.".into()];
        for op in ops {
            let mut dev = DeviceMut { model: &model, id: DeviceId(0), delta: &mut delta, boot_at: UnixMillis(0), now: UnixMillis(0) };
            match op {
                Op::Add(i) => {
                    let tables = reference.tables();
                    let table = &tables[i % tables.len()];
                    let want = reference.add(table);
                    prop_assert_eq!(dev.add_object(table, "k"), Ok(want), "AddObject {}", table);
                }
                Op::Delete(i) => {
                    if reference.instances.is_empty() {
                        continue;
                    }
                    let inst = reference.instances.iter().nth(i % reference.instances.len()).unwrap().clone();
                    prop_assert_eq!(dev.delete_object(&inst, "k"), Ok(()), "DeleteObject {}", inst);
                    reference.delete(&inst);
                    gone.push(inst);
                }
                Op::DeleteGone(i) => {
                    let inst = gone[i % gone.len()].clone();
                    prop_assert_eq!(dev.delete_object(&inst, "k"), Err(cpe_sim::cwmp::fault::FaultCode::InvalidParameterName));
                }
                Op::Set(i, v) => {
                    if reference.values.is_empty() {
                        continue;
                    }
                    let name = reference.values.keys().nth(i % reference.values.len()).unwrap().clone();
                    let value = v.to_string();
                    let entry = SpvEntry { name: &name, value: &value, xsi_type: Some("xsd:unsignedInt") };
                    prop_assert!(dev.spv(&[entry], "k").is_ok());
                    reference.values.insert(name, value);
                }
            }
            let (instances, values) = observed(&model, &delta);
            prop_assert_eq!(&instances, &reference.instances);
            prop_assert_eq!(&values, &reference.values);
            // Entry counts follow their own table only.
            let dev = model.device(DeviceId(0), &delta, UnixMillis(0), UnixMillis(0));
            for top in ["Device.A.1.", "Device.D.1."] {
                if reference.instances.contains(top) {
                    let n = reference.instances.iter().filter(|i| i.starts_with(top) && i.matches('.').count() == 5).count();
                    prop_assert_eq!(dev.get(&format!("{top}BNumberOfEntries")), Some(n.to_string()));
                }
            }
        }
    }
}

#[test]
fn deleting_a_nested_instance_keeps_the_same_numbers_in_a_sibling_table() {
    let model = nested_model();
    let mut delta = Delta::default();
    let mut dev = DeviceMut { model: &model, id: DeviceId(0), delta: &mut delta, boot_at: UnixMillis(0), now: UnixMillis(0) };
    // Same instance path [1, 2] under A and under D.
    assert_eq!(dev.add_object("Device.D.1.B.", "k"), Ok(2));
    assert_eq!(dev.add_object("Device.D.1.B.2.C.", "k"), Ok(1));
    assert_eq!(dev.add_object("Device.A.1.B.", "k"), Ok(3));
    dev.delete_object("Device.A.1.", "k").unwrap();
    let view = dev.view();
    assert_eq!(view.get("Device.D.1.B.2.C.1.X").as_deref(), Some("0"), "D's nested instances survive A.1's deletion");
    assert_eq!(view.get("Device.D.1.BNumberOfEntries").as_deref(), Some("2"));
    assert_eq!(view.get("Device.A.1.Name"), None);
    assert_eq!(dev.add_object("Device.A.", "k"), Ok(3), "A.1 and A.2 are never reused");
}

/// The RPCs the ACS below sends, in order, after the Inform.
const SCRIPT: &[(&str, &str)] = &[
    ("AddObject", "<cwmp:AddObject><ObjectName>Device.A.1.B.</ObjectName><ParameterKey>k1</ParameterKey></cwmp:AddObject>"),
    ("AddObject", "<cwmp:AddObject><ObjectName>Device.A.1.B.3.C.</ObjectName><ParameterKey>k2</ParameterKey></cwmp:AddObject>"),
    ("SetParameterValues", "<cwmp:SetParameterValues><ParameterList><ParameterValueStruct><Name>Device.A.1.B.3.C.1.X</Name><Value xsi:type=\"xsd:unsignedInt\">99</Value></ParameterValueStruct></ParameterList><ParameterKey>k3</ParameterKey></cwmp:SetParameterValues>"),
    ("DeleteObject", "<cwmp:DeleteObject><ObjectName>Device.A.1.B.1.</ObjectName><ParameterKey>k4</ParameterKey></cwmp:DeleteObject>"),
    ("AddObject", "<cwmp:AddObject><ObjectName>Device.A.1.B.</ObjectName><ParameterKey>k5</ParameterKey></cwmp:AddObject>"),
    ("GetParameterNames", "<cwmp:GetParameterNames><ParameterPath>Device.A.1.B.</ParameterPath><NextLevel>1</NextLevel></cwmp:GetParameterNames>"),
    ("GetParameterValues", "<cwmp:GetParameterValues><ParameterNames><string>Device.A.*.B.*.C.*.X</string><string>Device.D.1.B.1.C.1.X</string><string>Device.A.1.BNumberOfEntries</string></ParameterNames></cwmp:GetParameterValues>"),
    ("DeleteObject", "<cwmp:DeleteObject><ObjectName>Device.A.1.B.1.</ObjectName><ParameterKey>k6</ParameterKey></cwmp:DeleteObject>"),
];

#[tokio::test]
async fn an_acs_session_adds_and_deletes_nested_instances() {
    let bodies: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = bodies.clone();
    let acs = RawAcs::start(move |req, _| {
        let body = req.body_str();
        let mut bodies = seen.lock().unwrap();
        if body.contains("<cwmp:Inform>") {
            bodies.clear();
            return RawReply::Send(http("200 OK", &[("Content-Type", "text/xml")], &inform_response("1")));
        }
        // The empty POST, then one answer per scripted request.
        let step = bodies.len();
        bodies.push(body);
        match SCRIPT.get(step) {
            Some((_, rpc)) => RawReply::Send(http("200 OK", &[("Content-Type", "text/xml")], &acs_envelope(&format!("r{step}"), rpc))),
            None => RawReply::Send(http("204 No Content", &[], b"")),
        }
    })
    .await;
    let (report, cpe) = OneCpe::new(nested_model(), acs.url("/acs"), test_transport()).run().await;
    assert_eq!((report.completed, report.failed), (1, 0), "{:?}", report.last_error);
    let answers = bodies.lock().unwrap().clone();
    assert_eq!(answers.len(), SCRIPT.len() + 1, "{answers:#?}");
    let a = &answers[1..];
    assert_eq!(texts(&a[0], "InstanceNumber"), ["3"], "above the profile's B.1 and B.2");
    assert_eq!(texts(&a[1], "InstanceNumber"), ["1"], "a fresh instance's C table starts empty");
    assert_eq!(texts(&a[2], "Status"), ["0"]);
    assert_eq!(texts(&a[3], "Status"), ["0"]);
    assert_eq!(texts(&a[4], "InstanceNumber"), ["4"], "B.3 was the highest; B.1's deletion frees nothing");
    assert_eq!(texts(&a[5], "Name"), ["Device.A.1.B.2.", "Device.A.1.B.3.", "Device.A.1.B.4."]);
    let doc = &a[6];
    for (name, want) in [
        ("Device.A.1.B.2.C.1.X", "21"),
        ("Device.A.1.B.3.C.1.X", "99"),
        ("Device.D.1.B.1.C.1.X", "31"),
        ("Device.A.1.BNumberOfEntries", "3"),
    ] {
        assert_eq!(crate::support::value_of(doc, name).as_deref(), Some(want), "{name} in {doc}");
    }
    assert!(!doc.contains("Device.A.1.B.1."), "the deleted subtree is gone: {doc}");
    assert_eq!(texts(&a[7], "FaultCode"), ["9005"], "deleting it again");
    assert!(cpe.delta.inner().is_some());
}
