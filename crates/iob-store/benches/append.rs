//! Durable append throughput: batches of 1000 records with ~400-byte payloads, each batch
//! acknowledged only after its fsync, into a temp dir on the same disk as the data dir
//! (`IOB_BENCH_DIR`, default the system temp dir). Prints events/s and MB/s next to the disk's
//! sequential write speed.

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use iob_store::bench_support::measure_disk_seq_write;
use iob_store::{Codec, NewRecord, Store, StoreOptions};
use iob_types::{EventKind, PersonKey, Timestamp};

const BATCH: usize = 1000;
const PAYLOAD: usize = 400;

fn batch(seq: &mut u64) -> Vec<NewRecord> {
    (0..BATCH)
        .map(|_| {
            *seq += 1;
            let s = *seq;
            let mut person = [0u8; 16];
            person[..8].copy_from_slice(&(s % 10_007).wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes());
            let mut key = [0u8; 16];
            key[..8].copy_from_slice(&s.to_le_bytes());
            key[8] = 1;
            let mut payload = format!(r#"{{"type":"track","event":"Product Viewed","messageId":"{s}","properties":{{"sku":"#).into_bytes();
            payload.resize(PAYLOAD - 2, b'x');
            payload.extend_from_slice(b"}}");
            NewRecord {
                person: PersonKey(person),
                kind: EventKind::Track,
                event_time: Timestamp(1_700_000_000_000 + s as i64),
                received_at: Timestamp(1_700_000_000_000 + s as i64),
                dedup_key: Some(key),
                codec: Codec::Json,
                payload,
            }
        })
        .collect()
}

fn bench_dir() -> std::path::PathBuf {
    std::env::var_os("IOB_BENCH_DIR")
        .map(Into::into)
        .unwrap_or_else(std::env::temp_dir)
}

fn append(c: &mut Criterion) {
    let base = bench_dir();
    let disk = measure_disk_seq_write(&base, 256 << 20).unwrap();
    let dir = tempfile::tempdir_in(&base).unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let mut seq = 0u64;
    let bytes_per_batch = (BATCH * (PAYLOAD + 80)) as u64;
    let mut g = c.benchmark_group("store");
    g.sample_size(20)
        .measurement_time(Duration::from_secs(8))
        .warm_up_time(Duration::from_secs(2));
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function(BenchmarkId::new("append_durable", "1000x400B"), |b| {
        b.iter_custom(|iters| {
            let batches: Vec<_> = (0..iters).map(|_| batch(&mut seq)).collect();
            let t = Instant::now();
            for bt in batches {
                store.append(bt).unwrap();
            }
            t.elapsed()
        })
    });
    // Four concurrent appenders: what group commit buys.
    let store = std::sync::Arc::new(store);
    g.throughput(Throughput::Elements(4 * BATCH as u64));
    g.bench_function(
        BenchmarkId::new("append_durable_4_threads", "4x1000x400B"),
        |b| {
            b.iter_custom(|iters| {
                let per: Vec<Vec<_>> = (0..4)
                    .map(|_| (0..iters).map(|_| batch(&mut seq)).collect())
                    .collect();
                let t = Instant::now();
                std::thread::scope(|s| {
                    for bs in per {
                        let st = &store;
                        s.spawn(move || {
                            for bt in bs {
                                st.append(bt).unwrap();
                            }
                        });
                    }
                });
                t.elapsed()
            })
        },
    );
    g.finish();

    // A plain summary line (single-thread, measured once more without criterion's overhead).
    let n = 200;
    let batches: Vec<_> = (0..n).map(|_| batch(&mut seq)).collect();
    let t = Instant::now();
    for bt in batches {
        store.append(bt).unwrap();
    }
    let secs = t.elapsed().as_secs_f64();
    let events = (n * BATCH) as f64 / secs;
    let mbps = (n as u64 * bytes_per_batch) as f64 / 1e6 / secs;
    println!(
        "store append (1 thread, batches of {BATCH} x {PAYLOAD} B, fsync each): {events:.0} events/s, {mbps:.1} MB/s on disk (frames); disk sequential write: {disk:.1} MB/s"
    );
}

criterion_group!(benches, append);
criterion_main!(benches);
