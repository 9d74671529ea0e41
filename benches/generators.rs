//! Value generators (`model::generators`): the cost of one generated value, read on every GPV or
//! Inform that carries it and by `cpe::notify` at each session end. Run:
//! `cargo bench --bench generators`.

use std::hint::black_box;

use cpe_sim::model::generators::Generator;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const NOW: u64 = 1_736_936_430_000;

fn generators(c: &mut Criterion) {
    let mut g = c.benchmark_group("generators");
    g.throughput(Throughput::Elements(1));
    let cases = [
        ("walk", Generator::Walk { min: -95, max: -80, step_s: 60, salt: 1 }),
        ("diurnal", Generator::Diurnal { min: 3, max: 65, peak_hour: 20, noise_permille: 150, step_s: 60, salt: 2 }),
        ("bursty", Generator::Bursty { per_second: 250_000, burst_permille: 800, salt: 3 }),
    ];
    for (name, gen) in cases {
        let key = gen.key(42, 123_456, &[1]);
        let mut t = NOW;
        g.bench_function(format!("value/{name}"), |b| {
            b.iter(|| {
                t += 1000;
                black_box(gen.value(black_box(key), NOW - 86_400_000, t))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, generators);
criterion_main!(benches);
