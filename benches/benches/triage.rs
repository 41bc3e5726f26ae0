//! Triage: its accuracy on the held-out fifth of the labelled set
//! (skill accuracy, macro-F1, urgency accuracy, the confusion matrix) and
//! the time one request takes.
//! `cargo bench -p dispatchd-benches --bench triage`

use std::time::Duration;

use criterion::{black_box, criterion_group, Criterion};
use engine::triage::{shipped_examples, Evaluation, TriageState, SKILLS};

fn report() {
    let e = Evaluation::holdout(&shipped_examples());
    println!(
        "## Triage on the held-out fifth ({} train, {} test)\n",
        e.train, e.test
    );
    println!(
        "skill accuracy {:.3} · macro-F1 {:.3} · urgency accuracy {:.3}\n",
        e.skill_accuracy, e.macro_f1, e.urgency_accuracy
    );
    let short: Vec<&str> = SKILLS.iter().map(|s| &s[..4]).collect();
    println!("| truth \\ said | {} |", short.join(" | "));
    println!("|---|{}", "---:|".repeat(SKILLS.len()));
    for (i, row) in e.confusion.iter().enumerate() {
        let cells: Vec<String> = row.iter().map(|n| n.to_string()).collect();
        println!("| {} | {} |", SKILLS[i], cells.join(" | "));
    }
    println!();
}

fn latency(c: &mut Criterion) {
    let mut t = TriageState::default();
    let texts = [
        "kitchen sink is leaking under the cabinet",
        "sparks coming from the plug socket in the kitchen and a burning smell, please come quickly",
        "boiler stopped working, no heating and no hot water since yesterday evening, two kids at home",
        "grass very long",
    ];
    t.triage(texts[0]); // trains the classifier once
    let mut g = c.benchmark_group("triage");
    g.measurement_time(Duration::from_secs(3));
    let mut i = 0;
    g.bench_function("one_request", |b| {
        b.iter(|| {
            i = (i + 1) % texts.len();
            black_box(t.triage(texts[i]))
        })
    });
    g.bench_function("train_from_the_labelled_set", |b| {
        b.iter(|| {
            let mut fresh = TriageState::default();
            black_box(fresh.triage("tap"))
        })
    });
    g.finish();
}

criterion_group!(benches, latency);

fn main() {
    if std::env::args().any(|a| a == "--bench") {
        report();
    }
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
