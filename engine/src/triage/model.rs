//! The classifier: safety rules, weighted phrase rules per skill, and
//! multinomial naive Bayes over words and word pairs (skill and urgency
//! each), with the evaluation on a held-out part of the labelled set.

use std::collections::HashMap;

use super::{Example, TriageResult, Urgency, SKILLS};

/// Laplace smoothing.
const ALPHA: f64 = 0.5;
/// What a matched phrase rule adds to its skill's log-score.
const RULE_WEIGHT: f64 = 2.0;

/// Words that say nothing about the trade.
const STOP: &[&str] = &[
    "the", "a", "an", "and", "or", "is", "it", "in", "on", "of", "to", "my", "me", "i", "im", "at",
    "for", "with", "from", "up", "be", "this", "that", "there", "please", "pls", "we", "our",
    "has", "have", "had", "was", "are", "but", "not", "so", "as", "by", "its", "all", "some",
    "very", "just", "can", "could", "would", "will", "out", "off", "into", "when", "after",
    "before", "again", "also", "one", "get", "got", "needs", "need", "needed",
];

/// Phrases that decide `emergency`, each with the condition it names.
const SAFETY: &[(&[&str], &[&str])] = &[
    (
        &[
            "smell of gas",
            "gas smell",
            "smell gas",
            "gas leak",
            "smells of gas",
            "smelling gas",
        ],
        &[],
    ),
    (&["carbon monoxide", "co alarm"], &[]),
    (
        &[
            "burst pipe",
            "pipe burst",
            "burst water",
            "pipe has split",
            "pipe split",
            "flooding",
            "flooded",
            "water pouring",
            "water everywhere",
            "coming through the ceiling",
            "ceiling collapsed",
        ],
        &[],
    ),
    (
        &[
            "sparks",
            "sparking",
            "burning smell",
            "smell of burning",
            "smells of burning",
            "smoke coming",
            "on fire",
            "flames",
            "electric shock",
            "live wires",
            "melted",
        ],
        &[],
    ),
    (&["collapsed"], &[]),
    (
        &[
            "break in",
            "burglary",
            "cant secure",
            "can't secure",
            "forced open",
        ],
        &[],
    ),
    (
        &["no heat", "no heating"],
        &[
            "freezing",
            "minus",
            "below zero",
            "frozen",
            "elderly",
            "baby",
            "newborn",
        ],
    ),
    (
        &["locked out", "locked in"],
        &["child", "baby", "toddler", "kid", "elderly"],
    ),
    (&["toddler locked", "child locked", "baby locked"], &[]),
];

/// Hints for the urgency classifier.
const HIGH_HINTS: &[&str] = &[
    "urgent",
    "asap",
    "emergency",
    "no water",
    "no power",
    "no electricity",
    "no heating",
    "no hot water",
    "locked out",
    "overflowing",
    "backing up",
    "only toilet",
    "dangerous",
    "getting worse",
    "hurry",
    "all night",
    "defrosting",
];
const LOW_HINTS: &[&str] = &[
    "sometime",
    "quote",
    "when convenient",
    "no rush",
    "would like",
    "before winter",
    "annual",
    "next month",
    "not urgent",
    "nothing urgent",
    "before new tenants",
];

/// Words and phrases per skill a dispatcher would look for.
fn rules(skill: &str) -> &'static [&'static str] {
    match skill {
        "plumbing" => &[
            "leak",
            "leaking",
            "leaky",
            "tap",
            "faucet",
            "toilet",
            "toliet",
            "drain",
            "pipe",
            "pipes",
            "sink",
            "flush",
            "cistern",
            "water pressure",
            "stopcock",
            "basin",
            "wc",
            "overflow",
            "klempner",
            "plombier",
            "fontanero",
            "grifo",
            "wasserhahn",
            "fuite",
            "drip",
            "dripping",
            "shower drain",
            "blocked",
        ],
        "electrical" => &[
            "socket",
            "sockets",
            "plug",
            "fuse",
            "breaker",
            "trip switch",
            "tripping",
            "trips",
            "wiring",
            "wire",
            "wires",
            "light switch",
            "power",
            "electric",
            "electricity",
            "electricty",
            "rcd",
            "consumer unit",
            "elektriker",
            "électricien",
            "prise",
            "steckdose",
            "flicker",
            "flickers",
            "lights",
            "switch",
            "sparks",
            "extractor fan",
        ],
        "hvac" => &[
            "boiler",
            "heating",
            "radiator",
            "radiators",
            "thermostat",
            "air con",
            "aircon",
            "air conditioning",
            "air conditioner",
            "ac unit",
            "heat pump",
            "ventilation",
            "hot water",
            "heizung",
            "chauffage",
            "calefacción",
            "caldera",
            "furnace",
            "pilot light",
            "heater",
            "heaters",
            "storage heater",
        ],
        "appliance" => &[
            "washing machine",
            "dishwasher",
            "dish washer",
            "fridge",
            "freezer",
            "oven",
            "dryer",
            "drier",
            "tumble",
            "microwave",
            "hob",
            "cooker",
            "washer",
            "waschmaschine",
            "lave-linge",
            "lavadora",
            "wash machine",
        ],
        "locksmith" => &[
            "lock",
            "locks",
            "locked",
            "key",
            "keys",
            "deadbolt",
            "deadlock",
            "latch",
            "burglary",
            "forced",
            "schlüssel",
            "schlüsseldienst",
            "serrure",
            "serrurier",
            "cerradura",
            "cerrajero",
            "padlock",
        ],
        "pest" => &[
            "mice",
            "mouse",
            "rat",
            "rats",
            "cockroach",
            "cockroaches",
            "ants",
            "wasp",
            "wasps",
            "bed bugs",
            "bedbug",
            "fleas",
            "moths",
            "pest",
            "droppings",
            "infestation",
            "mäuse",
            "souris",
            "cucarachas",
            "hornet",
            "hornets",
            "squirrels",
            "pigeons",
            "rodents",
            "bees",
            "slugs",
            "birds",
            "larvae",
            "moth",
            "woodworm",
            "nest",
        ],
        "roofing" => &[
            "roof",
            "tiles off",
            "gutter",
            "gutters",
            "guttering",
            "chimney",
            "slate",
            "slates",
            "flashing",
            "downpipe",
            "skylight",
            "velux",
            "fascia",
            "soffit",
            "dach",
            "toiture",
            "tejado",
            "ridge",
            "tuiles",
        ],
        "carpentry" => &[
            "door frame",
            "cupboard door",
            "hinge",
            "hinges",
            "floorboard",
            "floorboards",
            "skirting",
            "banister",
            "stair",
            "stairs",
            "wardrobe",
            "drawer",
            "fence",
            "decking",
            "worktop",
            "shelves",
            "architrave",
            "gate",
            "tür",
            "porte",
            "puerta",
            "sticks",
            "planing",
            "bookshelf",
            "sash window",
            "door stop",
            "garden gate",
        ],
        "painting" => &[
            "paint",
            "painting",
            "repaint",
            "painted",
            "wallpaper",
            "decorate",
            "decorating",
            "redecorate",
            "gloss",
            "emulsion",
            "streichen",
            "repeindre",
            "pintar",
            "varnish",
        ],
        "cleaning" => &[
            "clean",
            "cleaning",
            "deep clean",
            "steam",
            "stains",
            "stained",
            "pressure wash",
            "jet wash",
            "rubbish",
            "reinigung",
            "nettoyage",
            "limpieza",
            "cleaner",
            "filthy",
            "dirty",
        ],
        "landscaping" => &[
            "grass", "lawn", "mow", "mowing", "hedge", "hedges", "tree", "garden", "weeds",
            "weeding", "bushes", "branch", "branches", "prune", "pruning", "rasen", "pelouse",
            "césped", "knotweed", "brambles", "leaves",
        ],
        "general" => &[
            "handyman",
            "odd jobs",
            "sealant",
            "silicone",
            "grout",
            "plaster",
            "plasterboard",
            "curtain",
            "blind",
            "blinds",
            "mirror",
            "condensation",
            "window pane",
            "reseal",
            "manitas",
            "hausmeister",
            "bricolage",
            "damp",
            "floor tile",
            "kitchen floor",
            "hooks",
            "handle broken",
        ],
        _ => &[],
    }
}

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

/// Features: each stemmed word, and each pair of neighbours.
fn features(ws: &[(String, String)]) -> Vec<(String, String)> {
    let mut f: Vec<(String, String)> = ws.to_vec();
    for p in ws.windows(2) {
        f.push((
            format!("{} {}", p[0].0, p[1].0),
            format!("{} {}", p[0].1, p[1].1),
        ));
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
    counts: HashMap<String, [u32; K]>,
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
    fn learn(&mut self, class: usize, feats: &[(String, String)]) {
        self.docs[class] += 1;
        for (f, _) in feats {
            self.counts.entry(f.clone()).or_insert([0; K])[class] += 1;
            self.tokens[class] += 1;
        }
    }

    /// Log-posterior per class (up to a constant).
    fn scores(&self, feats: &[(String, String)]) -> [f64; K] {
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
    fn lift(&self, f: &str, k: usize) -> f64 {
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
    fn urgency_of(&self, feats: &[(String, String)], padded: &str) -> (Urgency, Vec<String>) {
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
