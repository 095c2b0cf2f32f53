//! Replay throughput: parse + engine + serialise, per event.
//!
//! Generates a fixture world in memory (200 principals, 7 days, seed 7) and
//! replays it from a byte slice into a sink, so that only the per-event path
//! is measured: the bounded line reader, `parse_event`, `Engine::handle_event`
//! and `serde_json` of the record. `parse` measures the first two alone.
//!
//! The whole binary, file I/O included, is measured with
//! `taskset -c 0 target/release/riskstream replay --input world.jsonl
//! --output /dev/null`, which prints events/s in its summary.

use std::hint::black_box;
use std::io;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use riskstream::fixtures::{GenerateOptions, generate};
use riskstream::replay::{EngineOptions, JsonLines, LineReader, Replayer, parse_line};
use riskstream_schemas::ParseLimits;

fn world() -> Vec<u8> {
    let opts = GenerateOptions {
        seed: 7,
        principals: 200,
        days: 7,
        ..GenerateOptions::default()
    };
    let mut out = Vec::new();
    if let Err(e) = generate(&opts, &mut out) {
        panic!("the fixture generator failed: {e:#}");
    }
    out
}

fn replay(c: &mut Criterion) {
    let input = world();
    let loaded = match EngineOptions::default().load() {
        Ok(l) => l,
        Err(e) => panic!("the fixture engine configuration does not load: {e}"),
    };
    let limits = ParseLimits::default();
    let events = input
        .split(|b| *b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .count() as u64;

    let mut group = c.benchmark_group("replay");
    group.throughput(Throughput::Elements(events));
    group.sample_size(10);

    group.bench_function("parse", |b| {
        b.iter(|| {
            let mut lines = LineReader::new(&input[..], limits.max_bytes);
            let mut ok = 0u64;
            while let Ok(Some(line)) = lines.next_line() {
                ok += u64::from(parse_line(&line, limits).is_ok());
            }
            black_box(ok)
        });
    });

    group.bench_function("parse_engine_serialize", |b| {
        b.iter_batched(
            || loaded.engine(),
            |engine| {
                let mut replayer = Replayer::new(engine, limits);
                let mut out = JsonLines(io::sink());
                if let Err(e) = replayer.run(&input[..], "world", &mut out, None) {
                    panic!("replay failed: {e}");
                }
                black_box(replayer.finish())
            },
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

criterion_group!(benches, replay);
criterion_main!(benches);
