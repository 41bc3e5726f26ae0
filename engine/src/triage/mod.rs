//! Triage (API.md v1.1, "Intake"): what skill a request needs and how
//! urgent it is, from its description alone — offline and explainable.
//!
//! * **Safety rules** decide `emergency` whatever else the text says (gas,
//!   flooding, sparks or burning, no heat in freezing weather, someone
//!   locked in…); `matched` names the rule's phrase.
//! * **Phrase rules** per skill (weighted words and phrases a dispatcher
//!   would look for) and a **multinomial naive Bayes** over words and word
//!   pairs, trained on the labelled set shipped in `engine/data/triage.tsv`
//!   plus the examples ops post (`TriageExampleAdded`: replicated,
//!   durable, counted from the next request). The two add up per skill;
//!   `confidence` is the softmax of the totals.
//! * **Estimates** from this installation's own completed jobs per skill
//!   (the middle half of the last fares, once there are 5) or defaults.

mod eval;
mod model;
mod rules;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::error::EngineError;
use crate::event::EventKind;

pub use eval::Evaluation;
pub use model::Classifier;

/// The skills triage knows (API.md).
pub const SKILLS: [&str; 12] = [
    "plumbing",
    "electrical",
    "hvac",
    "appliance",
    "locksmith",
    "pest",
    "roofing",
    "carpentry",
    "painting",
    "cleaning",
    "landscaping",
    "general",
];

/// The labelled set shipped with the engine: `skill \t urgency \t text`.
pub const DATASET: &str = include_str!("../../data/triage.tsv");

/// Longest example description, characters (API.md v1.2).
pub const MAX_EXAMPLE_CHARS: usize = 2000;
/// Most examples ops may add (each is a few hundred bytes of state).
pub const MAX_EXAMPLES: usize = 20_000;
/// Fares kept per skill for estimates.
const FARES_KEPT: usize = 200;
/// Fares needed before estimates come from this installation.
pub const MIN_FARES: usize = 5;

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    Emergency,
    High,
    #[default]
    Normal,
    Low,
}

impl Urgency {
    pub const ALL: [Urgency; 4] = [
        Urgency::Emergency,
        Urgency::High,
        Urgency::Normal,
        Urgency::Low,
    ];

    pub fn parse(s: &str) -> Option<Urgency> {
        Urgency::ALL.into_iter().find(|u| u.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Urgency::Emergency => "emergency",
            Urgency::High => "high",
            Urgency::Normal => "normal",
            Urgency::Low => "low",
        }
    }

    /// Dispatch order: lower goes first.
    pub fn rank(self) -> u8 {
        self as u8
    }
}

/// A labelled request: shipped, or posted by ops.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Example {
    pub description: String,
    pub skill: String,
    pub urgency: Urgency,
}

impl Example {
    pub fn validate(&self) -> Result<(), EngineError> {
        if self.description.trim().is_empty()
            || self.description.len() > MAX_EXAMPLE_CHARS * 4
            || self.description.chars().count() > MAX_EXAMPLE_CHARS
        {
            return Err(EngineError::InvalidInput {
                field: "description",
                reason: "must be 1 to 2000 characters",
            });
        }
        if !SKILLS.contains(&self.skill.as_str()) {
            return Err(EngineError::InvalidInput {
                field: "skill",
                reason: "must be one of the triage skills",
            });
        }
        Ok(())
    }
}

/// What triage says of a description.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TriageResult {
    pub skill: String,
    pub urgency: Urgency,
    pub confidence: f64,
    /// The words and phrases that decided it.
    pub matched: Vec<String>,
    pub estimate_cents: (i64, i64),
    /// The other skills, most likely first.
    pub alternatives: Vec<(String, f64)>,
}

/// What requests read without the engine's lock.
#[derive(Default)]
pub(crate) struct TriageView {
    pub classifier: Option<std::sync::Arc<Learner>>,
    pub estimates: std::collections::HashMap<String, (i64, i64)>,
}

impl TriageResult {
    /// Every skill it weighed, most likely first (the 422's alternatives).
    pub fn alternatives_with_best(&self) -> Vec<(String, f64)> {
        let mut v = vec![(self.skill.clone(), self.confidence)];
        v.extend(self.alternatives.iter().cloned());
        v
    }
}

/// The labelled set (shipped, then ops' examples) parsed.
pub fn shipped_examples() -> Vec<Example> {
    DATASET
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let mut f = l.splitn(3, '\t');
            let (skill, urgency, text) = (f.next()?, f.next()?, f.next()?);
            Some(Example {
                description: text.to_owned(),
                skill: skill.to_owned(),
                urgency: Urgency::parse(urgency)?,
            })
        })
        .collect()
}

/// Defaults when this installation has too few completed jobs of a skill:
/// (low, high) in cents.
pub fn default_estimate(skill: &str) -> (i64, i64) {
    match skill {
        "plumbing" => (8_000, 25_000),
        "electrical" => (9_000, 30_000),
        "hvac" => (10_000, 40_000),
        "appliance" => (7_000, 20_000),
        "locksmith" => (6_000, 18_000),
        "pest" => (8_000, 25_000),
        "roofing" => (15_000, 60_000),
        "carpentry" => (7_000, 25_000),
        "painting" => (15_000, 80_000),
        "cleaning" => (6_000, 30_000),
        "landscaping" => (5_000, 20_000),
        _ => (5_000, 15_000),
    }
}

/// The classifier shared by the engine (which feeds it examples) and the
/// requests that classify (which read it). Applying an example under the
/// engine's job lock only queues it (a move of the example's own words);
/// its counts are added afterwards under the model's own lock, which job
/// creation and matching never take. Learning adds counts: nothing of the
/// model is copied per example, and an example costs memory for its own
/// words (new features) only.
#[derive(Debug)]
pub(crate) struct Learner {
    /// Applied examples whose counts are not in `model` yet.
    pending: parking_lot::Mutex<Vec<Example>>,
    model: parking_lot::RwLock<Classifier>,
}

impl Learner {
    fn shipped() -> Learner {
        let mut c = Classifier::default();
        for e in shipped_examples() {
            c.learn(&e);
        }
        Learner {
            pending: parking_lot::Mutex::new(Vec::new()),
            model: parking_lot::RwLock::new(c),
        }
    }

    fn queue(&self, e: Example) {
        self.pending.lock().push(e);
    }

    /// Adds the queued examples' counts to the model.
    pub(crate) fn flush(&self) {
        let batch = std::mem::take(&mut *self.pending.lock());
        if batch.is_empty() {
            return;
        }
        let mut m = self.model.write();
        for e in &batch {
            m.learn(e);
        }
    }

    /// Every applied example counts, then the description is classified.
    pub(crate) fn classify(&self, description: &str) -> TriageResult {
        self.flush();
        self.model.read().classify(description)
    }
}

/// The replicated part: ops' examples and recent fares per skill. The
/// classifier is rebuilt from these (and the shipped set) on restore.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TriageState {
    pub examples: Vec<Example>,
    pub fares: BTreeMap<String, VecDeque<i64>>,
    /// Shared with requests being classified outside the engine's lock.
    #[serde(skip)]
    classifier: Option<std::sync::Arc<Learner>>,
}

impl PartialEq for TriageState {
    fn eq(&self, o: &Self) -> bool {
        self.examples == o.examples && self.fares == o.fares
    }
}

impl TriageState {
    /// The classifier, built from the shipped set on first use.
    fn shared(&mut self) -> &std::sync::Arc<Learner> {
        self.classifier
            .get_or_insert_with(|| std::sync::Arc::new(Learner::shipped()))
    }

    /// Rebuilds the classifier (after a snapshot is read).
    pub(crate) fn reindex(&mut self) {
        self.classifier = None;
        let learner = self.shared().clone();
        {
            let mut m = learner.model.write();
            for e in &self.examples {
                m.learn(e);
            }
        }
    }

    pub(crate) fn check(&self, kind: &EventKind) -> Result<(), EngineError> {
        if let EventKind::TriageExampleAdded { example } = kind {
            example.validate()?;
            if self.examples.len() >= MAX_EXAMPLES {
                return Err(EngineError::Conflict("too many examples"));
            }
        }
        Ok(())
    }

    /// Keeps the example and queues its counts (added outside the lock
    /// this runs under: [`Learner::flush`]).
    pub(crate) fn apply(&mut self, kind: &EventKind) {
        if let EventKind::TriageExampleAdded { example } = kind {
            self.shared().queue(example.clone());
            self.examples.push(example.clone());
        }
    }

    /// A completed job's fare counts for its skill's estimate.
    pub(crate) fn record_fare(&mut self, skill: &str, fare: i64) {
        if !SKILLS.contains(&skill) {
            return;
        }
        let v = self.fares.entry(skill.to_owned()).or_default();
        v.push_back(fare);
        while v.len() > FARES_KEPT {
            v.pop_front();
        }
    }

    /// (low, high): the middle half of recent fares, or the default.
    pub fn estimate(&self, skill: &str) -> (i64, i64) {
        let Some(f) = self.fares.get(skill).filter(|f| f.len() >= MIN_FARES) else {
            return default_estimate(skill);
        };
        let mut v: Vec<i64> = f.iter().copied().collect();
        let n = v.len() - 1;
        let (lo, hi) = (
            (n as f64 * 0.25).round() as usize,
            (n as f64 * 0.75).round() as usize,
        );
        // Two selections, not a sort: this runs on every completion.
        let low = *v.select_nth_unstable(lo).1;
        let high = *v.select_nth_unstable(hi).1;
        (low, high)
    }

    /// The estimate for a skill triage knows, else none.
    pub fn estimate_for(&self, skill: &str) -> Option<(i64, i64)> {
        SKILLS.contains(&skill).then(|| self.estimate(skill))
    }

    pub fn triage(&mut self, description: &str) -> TriageResult {
        let mut r = self.shared().classify(description);
        r.estimate_cents = self.estimate(&r.skill);
        r
    }
}

impl crate::Engine {
    /// Triage of a description against this installation's model, without
    /// the engine's job lock (the hottest lock: creates and matches hold
    /// it): the classifier and the estimates are published to a view of
    /// their own whenever they change.
    pub fn triage(&self, description: &str) -> TriageResult {
        let c = self.learner();
        let mut r = c.classify(description);
        r.estimate_cents = self
            .triage_view
            .read()
            .estimates
            .get(&r.skill)
            .copied()
            .unwrap_or_else(|| default_estimate(&r.skill));
        r
    }

    /// The classifier requests use (published on first use or restore).
    fn learner(&self) -> std::sync::Arc<Learner> {
        if let Some(c) = self.triage_view.read().classifier.clone() {
            return c;
        }
        let mut t = self.jobs.lock();
        let c = t.triage.shared().clone();
        self.triage_view.write().classifier = Some(c.clone());
        c
    }

    /// After a restore (or an example): requests use this state's classifier.
    pub(crate) fn publish_classifier(&self, t: &mut TriageState) {
        let c = t.shared();
        let same = self
            .triage_view
            .read()
            .classifier
            .as_ref()
            .is_some_and(|v| std::sync::Arc::ptr_eq(v, c));
        if !same {
            self.triage_view.write().classifier = Some(c.clone());
        }
    }

    /// After a fare (or a restore): the estimates requests use.
    pub(crate) fn publish_estimates(&self, t: &TriageState, skill: Option<&str>) {
        let mut v = self.triage_view.write();
        for s in SKILLS.iter().filter(|s| skill.is_none_or(|k| k == **s)) {
            v.estimates.insert((*s).to_owned(), t.estimate(s));
        }
    }

    /// Ops teach triage an example (it counts from the next request).
    pub fn add_triage_example(
        &self,
        example: Example,
        now: crate::Millis,
    ) -> Result<Vec<crate::Event>, EngineError> {
        let mut out = Vec::new();
        {
            let mut t = self.jobs.lock();
            self.emit(
                &mut t,
                &mut out,
                now,
                EventKind::TriageExampleAdded { example },
            )?;
        }
        // Its counts, outside the job lock.
        self.learner().flush();
        Ok(out)
    }
}
