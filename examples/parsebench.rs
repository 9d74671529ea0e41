#[global_allocator]
static G: mimalloc::MiMalloc = mimalloc::MiMalloc;
fn main() {
    let body = std::fs::read("tests/fixtures/protocol-examples/inform-response.xml").unwrap();
    let n = 3_000_000;
    let t = std::time::Instant::now();
    for _ in 0..n { std::hint::black_box(cpe_sim::cwmp::rpc::parse_envelope(std::hint::black_box(&body)).unwrap()); }
    println!("parse_envelope {:?}/iter", t.elapsed() / n);
}
