//! Hot paths of the codec and the session step (issue floors: render a bootstrap Inform of the
//! TR-181 example ≤ 300 ns; parse an InformResponse ≤ 500 ns; parse a 32-name GPV and render its
//! response ≤ 15 µs). Run: `cargo bench --bench codec`.

use std::hint::black_box;

use bytes::BytesMut;
use cpe_sim::config::load_profile;
use cpe_sim::cpe::CpeState;
use cpe_sim::cwmp::rpc::parse_envelope;
use cpe_sim::model::{DeviceId, Model};
use cpe_sim::session::template::InformTemplate;
use cpe_sim::session::{AcsReply, Session, Step};
use cpe_sim::time::UnixMillis;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const NOW: UnixMillis = UnixMillis(1_736_936_430_000);

fn model() -> Model {
    load_profile(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/profiles/example-tr181-gateway"))).unwrap()
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/fixtures/protocol-examples/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn render_inform(c: &mut Criterion) {
    let model = model();
    let template = InformTemplate::new(&model);
    let mut g = c.benchmark_group("render_inform");
    g.throughput(Throughput::Elements(1));
    let bootstrap = CpeState::new(DeviceId(123_456), NOW);
    let mut out = BytesMut::with_capacity(8192);
    g.bench_function("tr181/bootstrap", |b| {
        b.iter(|| {
            out.clear();
            let dev = model.device(bootstrap.id, &bootstrap.delta, bootstrap.boot_at, NOW);
            let events = bootstrap.events.for_inform(0);
            template.render(&mut out, &dev, 1, &cpe_sim::session::EventStructs(&events), 0, &[]);
            black_box(out.len())
        })
    });
    let mut periodic = CpeState::new(DeviceId(123_456), NOW);
    periodic.events = Default::default();
    periodic.periodic_due();
    g.bench_function("tr181/periodic", |b| {
        b.iter(|| {
            out.clear();
            let dev = model.device(periodic.id, &periodic.delta, periodic.boot_at, NOW);
            let events = periodic.events.for_inform(0);
            template.render(&mut out, &dev, 2, &cpe_sim::session::EventStructs(&events), 0, &[]);
            black_box(out.len())
        })
    });
    g.finish();
}

fn parse_inform_response(c: &mut Criterion) {
    let body = fixture("inform-response.xml");
    let mut g = c.benchmark_group("parse_inform_response");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("genieacs", |b| b.iter(|| black_box(parse_envelope(black_box(&body)).unwrap())));
    g.finish();
}

fn gpv_32(c: &mut Criterion) {
    let model = model();
    let template = InformTemplate::new(&model);
    let dev_names: Vec<String> = {
        let d = cpe_sim::model::Delta::default();
        let dev = model.device(DeviceId(0), &d, NOW, NOW);
        dev.gpv_targets(&[""]).unwrap().iter().take(32).map(|l| model.tree.path_string(l)).collect()
    };
    let items: String = dev_names.iter().map(|n| format!("<string>{n}</string>")).collect();
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<soap-env:Envelope xmlns:soap-enc=\"http://schemas.xmlsoap.org/soap/encoding/\" xmlns:soap-env=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:cwmp=\"urn:dslforum-org:cwmp-1-0\"><soap-env:Header><cwmp:ID soap-env:mustUnderstand=\"1\">acs-1</cwmp:ID></soap-env:Header><soap-env:Body><cwmp:GetParameterValues><ParameterNames soap-enc:arrayType=\"xsd:string[32]\">{items}</ParameterNames></cwmp:GetParameterValues></soap-env:Body></soap-env:Envelope>"
    )
    .into_bytes();
    let mut cpe = CpeState::new(DeviceId(9), NOW);
    let mut out = BytesMut::with_capacity(16384);
    let mut session = Session::start(&model, &template, &mut cpe, NOW, &mut out);
    let ir = fixture("inform-response.xml");
    out.clear();
    assert_eq!(session.handle(&model, &mut cpe, AcsReply::Body(&ir), NOW, &mut out), Step::SendEmpty);
    let mut g = c.benchmark_group("gpv");
    g.throughput(Throughput::Elements(32));
    g.bench_function("parse_and_respond/32_names", |b| {
        b.iter(|| {
            out.clear();
            let step = session.handle(&model, &mut cpe, AcsReply::Body(black_box(&body)), NOW, &mut out);
            debug_assert_eq!(step, Step::Send);
            black_box(out.len())
        })
    });
    g.finish();
}

criterion_group!(benches, render_inform, parse_inform_response, gpv_32);
criterion_main!(benches);
