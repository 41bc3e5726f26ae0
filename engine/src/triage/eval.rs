//! How triage does on a held-out part of the labelled set.

use super::model::Classifier;
use super::{Example, SKILLS};

/// How triage does on a held-out part of the labelled set.
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub train: usize,
    pub test: usize,
    pub skill_accuracy: f64,
    pub macro_f1: f64,
    pub urgency_accuracy: f64,
    /// confusion[truth][predicted], in `SKILLS` order.
    pub confusion: Vec<Vec<u32>>,
}

impl Evaluation {
    /// Trains on four fifths of `examples` and tests on the rest (every
    /// fifth, so every skill is in both).
    pub fn holdout(examples: &[Example]) -> Evaluation {
        let mut c = Classifier::default();
        let (mut train, mut test) = (Vec::new(), Vec::new());
        for (i, e) in examples.iter().enumerate() {
            if i % 5 == 4 {
                test.push(e);
            } else {
                train.push(e);
            }
        }
        for e in &train {
            c.learn(e);
        }
        let k = SKILLS.len();
        let mut confusion = vec![vec![0u32; k]; k];
        let (mut right, mut urgent_right) = (0, 0);
        for e in &test {
            let r = c.classify(&e.description);
            let truth = SKILLS.iter().position(|s| *s == e.skill).unwrap_or(k - 1);
            let got = SKILLS.iter().position(|s| *s == r.skill).unwrap_or(k - 1);
            confusion[truth][got] += 1;
            right += usize::from(truth == got);
            urgent_right += usize::from(r.urgency == e.urgency);
        }
        let f1: f64 = (0..k)
            .map(|j| {
                let tp = confusion[j][j] as f64;
                let fp: f64 = (0..k)
                    .filter(|i| *i != j)
                    .map(|i| confusion[i][j] as f64)
                    .sum();
                let fn_: f64 = (0..k)
                    .filter(|i| *i != j)
                    .map(|i| confusion[j][i] as f64)
                    .sum();
                if tp == 0.0 {
                    0.0
                } else {
                    2.0 * tp / (2.0 * tp + fp + fn_)
                }
            })
            .sum::<f64>()
            / k as f64;
        Evaluation {
            train: train.len(),
            test: test.len(),
            skill_accuracy: right as f64 / test.len().max(1) as f64,
            macro_f1: f1,
            urgency_accuracy: urgent_right as f64 / test.len().max(1) as f64,
            confusion,
        }
    }
}
