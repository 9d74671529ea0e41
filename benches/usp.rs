//! Hot paths of a USP Agent (issue 14): open a Record and answer a Get of one parameter and of
//! `Device.DeviceInfo.`, and seal a Boot! Notify. Run: `cargo bench --bench usp`.

use std::hint::black_box;

use cpe_sim::config::load_profile;
use cpe_sim::cpe::CpeState;
use cpe_sim::model::{DeviceId, Model};
use cpe_sim::time::UnixMillis;
use cpe_sim::usp::notify::BootCause;
use cpe_sim::usp::subscription::{self, Event};
use cpe_sim::usp::{record, Agent};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rusp_lib::usp::mod_Body::OneOfmsg_body;
use rusp_lib::usp::mod_Header::MsgType;
use rusp_lib::usp::mod_Request::OneOfreq_type;
use rusp_lib::usp::{Body, Get, Header, Msg, Request};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const NOW: UnixMillis = UnixMillis(1_736_936_430_000);
const CTL: &str = "self::bench-controller";

fn model() -> Model {
    load_profile(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/profiles/example-tr181-gateway"))).unwrap()
}

fn get_record(agent: &str, path: &str) -> Vec<u8> {
    let msg = Msg {
        header: Some(Header { msg_id: "bench-1".into(), msg_type: MsgType::GET }),
        body: Some(Body {
            msg_body: OneOfmsg_body::request(Request {
                req_type: OneOfreq_type::get(Get { param_paths: vec![path.into()], max_depth: 0 }),
            }),
        }),
    };
    record::seal(&msg, CTL, agent)
}

fn agent_get(c: &mut Criterion) {
    let model = model();
    let mut agent = Agent::new("os::FEFEFE-FEFEFE01E240".into(), CTL.into(), CpeState::new(DeviceId(123_456), NOW));
    let mut g = c.benchmark_group("usp_get");
    g.throughput(Throughput::Elements(1));
    for (name, path) in [("one_param", "Device.DeviceInfo.SoftwareVersion"), ("device_info", "Device.DeviceInfo.")] {
        let rec = get_record(&agent.endpoint_id.clone(), path);
        g.bench_function(format!("tr181/{name}"), |b| {
            b.iter(|| {
                let h = agent.handle(&model, black_box(&rec), NOW).unwrap();
                black_box(h.reply);
            })
        });
    }
    g.finish();
}

fn boot_notify(c: &mut Criterion) {
    let model = model();
    let mut agent = Agent::new("os::FEFEFE-FEFEFE01E240".into(), CTL.into(), CpeState::new(DeviceId(123_456), NOW));
    agent.factory_defaults(&model, NOW);
    let mut g = c.benchmark_group("usp_notify");
    g.throughput(Throughput::Elements(1));
    // The whole Boot!: which subscriptions hear it (the factory-default one), the Notify, the Record.
    g.bench_function("tr181/boot", |b| {
        b.iter(|| {
            let dev = model.device(agent.cpe.id, &agent.cpe.delta, agent.cpe.boot_at, NOW);
            let out = subscription::notifies(&dev, &Event::Boot { cause: BootCause::LocalReboot, command_key: "" }, CTL);
            for o in out {
                black_box(agent.notify(o.notify));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, agent_get, boot_notify);
criterion_main!(benches);
