//! Ingest-path benchmarks: a 1000-event `/v1/batch` body of ~400-byte track events (parse +
//! validate + enrich; as `Event`s and as canonical JSON, the engine's path), a single `/v1/track` call, and the CSV importer on a generated
//! 100k-row retail-like file.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use iob_collect::import::{CsvMapping, preset};
use iob_collect::{CollectOptions, Collector, Received};
use iob_types::{EventKind, Timestamp};

fn track_event(i: usize) -> String {
    format!(
        concat!(
            r#"{{"type":"track","event":"Product Viewed","userId":"user-{:05}","#,
            r#""messageId":"msg-{:08}","timestamp":"2024-05-01T12:00:{:02}.123Z","#,
            r#""context":{{"page":{{"path":"/products/{}","url":"https://shop.example.com/products/{}"}},"#,
            r#""userAgent":"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15"}},"#,
            r#""properties":{{"product_id":"sku-{}","price":19.99,"currency":"EUR"}}}}"#
        ),
        i % 50_000,
        i,
        i % 60,
        i % 997,
        i % 997,
        i % 997
    )
}

fn batch_body(n: usize) -> Vec<u8> {
    let events: Vec<String> = (0..n).map(track_event).collect();
    format!(
        r#"{{"batch":[{}],"sentAt":"2024-05-01T12:01:00.000Z","writeKey":"wk_test"}}"#,
        events.join(",")
    )
    .into_bytes()
}

fn rx() -> Received<'static> {
    Received {
        source: Some("web"),
        received_at: Timestamp(1_714_565_400_000),
        ip: Some(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7))),
    }
}

fn bench_segment(c: &mut Criterion) {
    let collector = Collector::default();
    let body = batch_body(1000);
    let avg = body.len() / 1000;
    let mut g = c.benchmark_group("segment");
    g.sample_size(20)
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_secs(1));
    g.throughput(Throughput::Elements(1000));
    g.bench_function(format!("batch_1000x{avg}B_events"), |b| {
        b.iter(|| {
            let parsed = collector.parse_batch(black_box(&body), &rx()).unwrap();
            assert_eq!(parsed.items.len(), 1000);
            parsed.items.iter().filter(|i| i.result.is_ok()).count()
        })
    });
    let mut out = iob_collect::CanonicalEvents::new();
    g.bench_function(format!("batch_1000x{avg}B_canonical"), |b| {
        b.iter(|| {
            out.clear();
            let parsed = collector
                .parse_batch_canonical(black_box(&body), &rx(), &mut out)
                .unwrap();
            assert_eq!(parsed.items.len(), 1000);
            out.len()
        })
    });
    // The cost of `iobEnrichment` (user agent parse, cached; no sentiment property here).
    let plain = Collector::new(CollectOptions {
        parse_user_agent: false,
        sentiment_properties: Vec::new(),
        ..CollectOptions::default()
    });
    g.bench_function(format!("batch_1000x{avg}B_canonical_unenriched"), |b| {
        b.iter(|| {
            out.clear();
            let parsed = plain
                .parse_batch_canonical(black_box(&body), &rx(), &mut out)
                .unwrap();
            assert_eq!(parsed.items.len(), 1000);
            out.len()
        })
    });
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("batch_1000_bytes", |b| {
        b.iter(|| {
            collector
                .parse_batch(black_box(&body), &rx())
                .unwrap()
                .items
                .len()
        })
    });
    let one = track_event(7).into_bytes();
    g.throughput(Throughput::Elements(1));
    g.bench_function("track_single", |b| {
        b.iter(|| {
            collector
                .parse_event(black_box(&one), Some(EventKind::Track), &rx())
                .unwrap()
        })
    });
    g.finish();
}

fn retail_csv(rows: usize) -> Vec<u8> {
    let mut s = String::from(
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n",
    );
    for i in 0..rows {
        let customer = if i % 4 == 0 {
            String::new()
        } else {
            format!("{}", 12_000 + i % 4_000)
        };
        s.push_str(&format!(
            "{},{}A,WHITE HANGING HEART T-LIGHT HOLDER,{},2010-12-{:02} {:02}:{:02}:00,{}.{:02},{},United Kingdom\n",
            536_365 + i / 10,
            85_000 + i % 3_000,
            1 + i % 24,
            1 + i % 28,
            8 + i % 10,
            i % 60,
            i % 20,
            i % 100,
            customer
        ));
    }
    s.into_bytes()
}

fn bench_csv(c: &mut Criterion) {
    let collector = Collector::default();
    let data = retail_csv(100_000);
    // The mapping users run (`iob import --preset uci-online-retail`), not a copy of it.
    let mapping = CsvMapping::from_toml_str(preset("uci-online-retail").expect("shipped preset"))
        .expect("the preset parses");
    let mut g = c.benchmark_group("csv");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(8))
        .warm_up_time(Duration::from_secs(1));
    g.throughput(Throughput::Elements(100_000));
    g.bench_function("retail_100k_rows", |b| {
        b.iter(|| {
            let it = collector
                .import_csv(black_box(&data[..]), &mapping, "bench.csv", rx())
                .unwrap();
            let ok = it
                .filter(|i| i.as_ref().is_ok_and(|i| i.result.is_ok()))
                .count();
            assert_eq!(ok, 100_000);
            ok
        })
    });
    g.finish();
}

criterion_group!(benches, bench_segment, bench_csv);
criterion_main!(benches);
