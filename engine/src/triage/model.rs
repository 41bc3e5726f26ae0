//! The classifier: safety rules and weighted phrase rules per skill (the
//! tables in `rules.rs`) on top of multinomial naive Bayes over words and
//! word pairs, for skill and urgency each.

use std::collections::HashMap;

use super::rules::{rules, HIGH_HINTS, LOW_HINTS, SAFETY, STOP};
use super::{Example, TriageResult, Urgency, SKILLS};

/// Laplace smoothing.
const ALPHA: f64 = 0.5;
/// What a matched phrase rule adds to its skill's log-score.
const RULE_WEIGHT: f64 = 2.0;

/// Lower-cased words (letters and digits; apostrophes dropped), with a
/// light stem, and the text as ` word word ` for phrase matching.
fn words(text: &str) -> (Vec<(String, String)>, String) {
    let lower = text.to_lowercase().replace(['\'', '’'], "");
    let mut padded = String::with_capacity(lower.len() + 2);
    padded.push(' ');
    let mut out = Vec::new();
    for w in lower.split(|c: char| !c.is_alphanumeric() && c != '-') {
        let w = w.trim_matches('-');
        if w.is_empty() {
            continue;
        }
        padded.push_str(w);
        padded.push(' ');
        if w.chars().count() < 2 || STOP.contains(&w) {
            continue;
        }
        out.push((stem(w), w.to_owned()));
    }
    (out, padded)
}

fn stem(w: &str) -> String {
    let n = w.chars().count();
    for (suffix, min) in [("ing", 6), ("ed", 5), ("es", 5), ("s", 4)] {
        if n >= min && w.ends_with(suffix) && !w.ends_with("ss") {
            return w[..w.len() - suffix.len()].to_owned();
        }
    }
    w.to_owned()
}

/// A feature's key in the model: a 64-bit hash of its stemmed text (the
/// model keeps no strings: a feature costs its counts and 8 bytes).
fn key(parts: &[&str]) -> u64 {
    use std::hash::{Hash, Hasher};
    // SipHash with fixed keys: the same text, the same key, in any process.
    #[allow(deprecated)]
    let mut h = std::hash::SipHasher::new();
    for p in parts {
        p.hash(&mut h);
    }
    h.finish()
}

/// Features: each stemmed word, and each pair of neighbours, with the
/// original words (for `matched`).
fn features(ws: &[(String, String)]) -> Vec<(u64, String)> {
    let mut f: Vec<(u64, String)> = ws.iter().map(|(s, o)| (key(&[s]), o.clone())).collect();
    for p in ws.windows(2) {
        f.push((key(&[&p[0].0, &p[1].0]), format!("{} {}", p[0].1, p[1].1)));
    }
    f
}

/// Whether `phrase` occurs as whole words in ` word word ` text.
fn has(padded: &str, phrase: &str) -> bool {
    let step = phrase.chars().next().map_or(1, char::len_utf8);
    let mut from = 0;
    while let Some(i) = padded[from..].find(phrase) {
        let (a, b) = (from + i, from + i + phrase.len());
        if padded[..a].ends_with(' ') && padded[b..].starts_with(' ') {
            return true;
        }
        from = a + step;
    }
    false
}

/// Counts for one naive Bayes over `K` classes.
#[derive(Debug, Clone)]
struct Bayes<const K: usize> {
    docs: [u64; K],
    tokens: [u64; K],
    counts: HashMap<u64, [u32; K]>,
}

impl<const K: usize> Default for Bayes<K> {
    fn default() -> Self {
        Bayes {
            docs: [0; K],
            tokens: [0; K],
            counts: HashMap::new(),
        }
    }
}

impl<const K: usize> Bayes<K> {
    fn learn(&mut self, class: usize, feats: &[(u64, String)]) {
        self.docs[class] += 1;
        for (f, _) in feats {
            self.counts.entry(*f).or_insert([0; K])[class] += 1;
            self.tokens[class] += 1;
        }
    }

    /// Log-posterior per class (up to a constant).
    fn scores(&self, feats: &[(u64, String)]) -> [f64; K] {
        let total: u64 = self.docs.iter().sum();
        let v = self.counts.len().max(1) as f64;
        let mut s = [0.0; K];
        for (k, sk) in s.iter_mut().enumerate() {
            *sk = ((self.docs[k] as f64 + 1.0) / (total as f64 + K as f64)).ln();
            let denom = self.tokens[k] as f64 + ALPHA * v;
            for (f, _) in feats {
                // Features never seen in training say nothing.
                if let Some(c) = self.counts.get(f) {
                    *sk += ((c[k] as f64 + ALPHA) / denom).ln();
                }
            }
        }
        s
    }

    /// How much `f` speaks for class `k` over the others (for `matched`).
    fn lift(&self, f: &u64, k: usize) -> f64 {
        let Some(c) = self.counts.get(f) else {
            return 0.0;
        };
        let p = |j: usize| (c[j] as f64 + ALPHA) / (self.tokens[j] as f64 + ALPHA);
        let others: f64 = (0..K).filter(|j| *j != k).map(p).sum::<f64>() / (K - 1) as f64;
        (p(k) / others).ln()
    }
}

fn softmax<const K: usize>(s: &[f64; K]) -> [f64; K] {
    let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
    let z: f64 = e.iter().sum();
    let mut out = [0.0; K];
    for (o, x) in out.iter_mut().zip(e) {
        *o = x / z;
    }
    out
}

/// Skill and urgency classifiers, trained incrementally.
#[derive(Debug, Clone, Default)]
pub struct Classifier {
    skill: Bayes<12>,
    urgency: Bayes<4>,
}

impl Classifier {
    pub fn learn(&mut self, e: &Example) {
        let Some(k) = SKILLS.iter().position(|s| *s == e.skill) else {
            return;
        };
        let (ws, _) = words(&e.description);
        let f = features(&ws);
        self.skill.learn(k, &f);
        self.urgency.learn(e.urgency.rank() as usize, &f);
    }

    pub fn classify(&self, text: &str) -> TriageResult {
        let (ws, padded) = words(text);
        let feats = features(&ws);
        // Scores are tempered by the text's length, so a long description
        // does not look certain for having many words.
        let temper = 1.0 + feats.len() as f64 / 6.0;
        let mut scores = self.skill.scores(&feats);
        let mut fired: Vec<Vec<&str>> = vec![Vec::new(); SKILLS.len()];
        for (k, s) in SKILLS.iter().enumerate() {
            for phrase in rules(s) {
                if has(&padded, phrase) {
                    fired[k].push(phrase);
                }
            }
            scores[k] = scores[k] / temper + RULE_WEIGHT * fired[k].len() as f64;
        }
        let p = softmax(&scores);
        let mut order: Vec<usize> = (0..SKILLS.len()).collect();
        order.sort_by(|a, b| p[*b].total_cmp(&p[*a]).then(a.cmp(b)));
        let best = order[0];
        // What decided it: the rules that fired, then the words that speak
        // most for the skill.
        let mut matched: Vec<String> = fired[best].iter().map(|s| s.to_string()).collect();
        let mut lifts: Vec<(f64, &str)> = feats
            .iter()
            .map(|(f, orig)| (self.skill.lift(f, best), orig.as_str()))
            .filter(|(l, _)| *l > 1.0)
            .collect();
        lifts.sort_by(|a, b| b.0.total_cmp(&a.0));
        for (_, w) in lifts {
            if matched.len() >= 5 {
                break;
            }
            if !matched
                .iter()
                .any(|m| m.contains(w) || w.contains(m.as_str()))
            {
                matched.push(w.to_owned());
            }
        }
        let (urgency, why) = self.urgency_of(&feats, &padded);
        matched.extend(why);
        TriageResult {
            skill: SKILLS[best].to_owned(),
            urgency,
            confidence: (p[best] * 1000.0).round() / 1000.0,
            matched,
            estimate_cents: (0, 0),
            alternatives: order[1..4]
                .iter()
                .map(|k| (SKILLS[*k].to_owned(), (p[*k] * 1000.0).round() / 1000.0))
                .collect(),
        }
    }

    /// Safety rules first; then the urgency classifier with its hints.
    fn urgency_of(&self, feats: &[(u64, String)], padded: &str) -> (Urgency, Vec<String>) {
        for (phrases, with) in SAFETY {
            for ph in *phrases {
                if !has(padded, ph) {
                    continue;
                }
                if with.is_empty() {
                    return (Urgency::Emergency, vec![ph.to_string()]);
                }
                if let Some(w) = with.iter().find(|w| has(padded, w)) {
                    return (Urgency::Emergency, vec![ph.to_string(), w.to_string()]);
                }
            }
        }
        let mut s = self.urgency.scores(feats);
        let temper = 1.0 + feats.len() as f64 / 6.0;
        for x in s.iter_mut() {
            *x /= temper;
        }
        // Emergency is the rules' to give.
        s[Urgency::Emergency.rank() as usize] = f64::NEG_INFINITY;
        let mut why = Vec::new();
        for h in HIGH_HINTS {
            if has(padded, h) {
                s[Urgency::High.rank() as usize] += RULE_WEIGHT;
                why.push(h.to_string());
            }
        }
        for h in LOW_HINTS {
            if has(padded, h) {
                s[Urgency::Low.rank() as usize] += RULE_WEIGHT;
                why.push(h.to_string());
            }
        }
        let best = (1..4)
            .max_by(|a, b| s[*a].total_cmp(&s[*b]).then(b.cmp(a)))
            .unwrap_or(2);
        (Urgency::ALL[best], why)
    }
}
