//! `cpe-sim check --profile P`: load a profile, say what it defines, print a CPE's Inform.

use std::process::ExitCode;

use anyhow::Context;
use bytes::BytesMut;

use super::load;
use crate::console;
use crate::cpe::CpeState;
use crate::model::DeviceId;
use crate::session::template::InformTemplate;
use crate::time::UnixMillis;

/// Checks the profile at `path` and prints CPE `cpe_index`'s Inform.
pub fn check(path: &std::path::Path, cpe_index: u32) -> anyhow::Result<ExitCode> {
    let model = load(Some(path), None)?;
    let now = UnixMillis::now();
    let fresh = crate::model::Delta::default();
    let params = model.device(DeviceId(cpe_index), &fresh, now, now).gpv_targets(&[""]).map_or(0, |l| l.len());
    let mut cpe = CpeState::new(DeviceId(cpe_index), now);
    let template = InformTemplate::new(&model);
    let mut out = BytesMut::new();
    let _ = crate::session::Session::start(&model, &template, &mut cpe, now, &mut out);
    let schema_params = model.tree.ids().filter(|&n| model.tree.node(n).param().is_some()).count();
    let text = format!(
        "profile {} ok: root {}., {params} parameters per CPE ({schema_params} in the schema tree), {} forced into every Inform, {}\nInform of cpe-{cpe_index}:\n{}\n",
        model.name,
        model.tree.root_name(),
        model.forced.len(),
        model.cwmp_urn,
        String::from_utf8_lossy(&out)
    );
    // A closed stdout (`| head`) is not an error worth a panic.
    console::out(&text).context("writing to stdout")?;
    Ok(ExitCode::SUCCESS)
}
