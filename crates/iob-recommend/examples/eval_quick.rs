//! Development helper: `cargo run --release -p iob-recommend --example eval_quick -- DATASET PROTOCOL`.
use iob_recommend::eval::{self, EvalOptions, Protocol};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let root = eval::data::default_root(&std::env::current_dir().unwrap()).expect("shared/data");
    let d = eval::data::load(&root, args.get(1).map_or("ml-100k", |s| s)).unwrap();
    let p = if args.get(2).is_some_and(|s| s == "last") {
        Protocol::LeaveLastOut
    } else {
        Protocol::Random811
    };
    let s = eval::split::split(&d, p, 2020);
    if let Ok(dir) = std::env::var("SPLIT_OUT") {
        s.write(std::path::Path::new(&dir), &d.name, p).unwrap();
        if std::env::var("SPLIT_ONLY").is_ok() {
            return;
        }
    }
    let r = eval::run_all(&s, &EvalOptions::default(), &mut |m| eprintln!("{m}"));
    print!(
        "{}",
        eval::table(&[eval::Report {
            dataset: d.name.clone(),
            protocol: p,
            users: s.n_users,
            items: s.n_items,
            train_interactions: s.train.len(),
            results: r
        }])
    );
}
