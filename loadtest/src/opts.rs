//! Scenarios and their knobs. Each scenario is a set of defaults; every
//! field can be overridden from the command line.

use std::time::Duration;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// The repair-request programme: 30 cities, 100 engineers, 10k homes
    /// (each home a resident with a socket), a few jobs a second.
    City,
    /// On-demand: 10k partners at 1 position/s, 200 jobs/s, short sessions.
    Rush,
    /// Idle workers only: hold N sockets, each sending a position every 5 s.
    Connections,
    /// `rush` for an hour.
    Soak,
}

#[derive(Debug, Clone, Serialize)]
pub struct Options {
    pub scenario: Scenario,
    pub workers: usize,
    /// Residents; each holds a socket following its jobs when `follow` is set.
    pub residents: usize,
    pub follow: bool,
    pub cities: usize,
    pub skills: Vec<String>,
    pub skills_per_worker: usize,
    /// Open-loop job arrivals per second (0: none).
    pub jobs_per_s: f64,
    /// Position reports per worker per second.
    pub positions_per_s: f64,
    /// Fraction of position reports sent with a `req_id` to time their ack.
    pub ack_sample: f64,
    pub duration: Duration,
    /// New connections per second while ramping up.
    pub ramp_per_s: f64,
    /// Worker's delay before answering an offer.
    pub think: Duration,
    pub decline_ratio: f64,
    /// Offers left to expire.
    pub ignore_ratio: f64,
    /// Accept → arrive.
    pub travel: Duration,
    /// Arrive → complete.
    pub session: Duration,
    /// After the run: how long to wait for jobs in flight to settle.
    pub drain: Duration,
    /// Closed-loop saturation phase after the run (matches per second), seconds; 0 skips it.
    pub saturate: Duration,
    pub saturate_clients: usize,
    /// 127.0.0.x source addresses to spread client sockets over.
    pub source_ips: usize,
    pub seed: u64,
    /// Crash loop: kill -9 a node this often, this many times (`None`: no chaos).
    pub chaos: Option<Chaos>,
}

/// The chaos mode: during the run a started node is killed with SIGKILL
/// every `kill_every` and started again on the same data directory; the
/// apps reconnect with `?since=` and carry on, and an audit follows.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Chaos {
    pub kill_every: Duration,
    pub cycles: usize,
}

impl Options {
    pub fn defaults(s: Scenario) -> Options {
        let base = Options {
            scenario: s,
            workers: 100,
            residents: 10_000,
            follow: true,
            cities: 30,
            skills: [
                "plumbing",
                "electrics",
                "hvac",
                "locks",
                "glazing",
                "carpentry",
            ]
            .map(String::from)
            .to_vec(),
            skills_per_worker: 3,
            jobs_per_s: 2.0,
            positions_per_s: 0.2,
            ack_sample: 0.05,
            duration: Duration::from_secs(60),
            ramp_per_s: 2000.0,
            think: Duration::from_millis(1500),
            decline_ratio: 0.1,
            ignore_ratio: 0.05,
            travel: Duration::from_secs(3),
            session: Duration::from_secs(5),
            drain: Duration::from_secs(25),
            saturate: Duration::ZERO,
            saturate_clients: 32,
            source_ips: 8,
            seed: 1,
            chaos: None,
        };
        match s {
            Scenario::City => base,
            Scenario::Rush | Scenario::Soak => Options {
                workers: 10_000,
                residents: 2_000,
                cities: 3,
                skills: vec!["delivery".into()],
                skills_per_worker: 1,
                jobs_per_s: 200.0,
                positions_per_s: 1.0,
                ack_sample: 0.01,
                duration: Duration::from_secs(if s == Scenario::Soak { 3600 } else { 60 }),
                think: Duration::from_millis(200),
                decline_ratio: 0.05,
                ignore_ratio: 0.01,
                travel: Duration::from_secs(1),
                session: Duration::from_secs(2),
                ..base
            },
            Scenario::Connections => Options {
                workers: 50_000,
                residents: 0,
                follow: false,
                cities: 30,
                jobs_per_s: 0.0,
                positions_per_s: 0.2,
                ack_sample: 0.01,
                drain: Duration::ZERO,
                ..base
            },
        }
    }

    /// Client sockets this run opens.
    pub fn sockets(&self) -> usize {
        self.workers + if self.follow { self.residents } else { 0 }
    }
}

/// 30 city centres (lat, lng); workers and homes are placed within ~6 km.
pub const CITIES: [(f64, f64); 30] = [
    (51.5074, -0.1278),
    (48.8566, 2.3522),
    (52.5200, 13.4050),
    (40.4168, -3.7038),
    (41.9028, 12.4964),
    (52.3676, 4.9041),
    (50.8503, 4.3517),
    (48.2082, 16.3738),
    (50.0755, 14.4378),
    (52.2297, 21.0122),
    (59.3293, 18.0686),
    (55.6761, 12.5683),
    (60.1699, 24.9384),
    (59.9139, 10.7522),
    (53.3498, -6.2603),
    (38.7223, -9.1393),
    (47.3769, 8.5417),
    (45.4642, 9.1900),
    (53.5511, 9.9937),
    (48.1351, 11.5820),
    (50.1109, 8.6821),
    (41.3851, 2.1734),
    (45.7640, 4.8357),
    (43.2965, 5.3698),
    (47.4979, 19.0402),
    (44.4268, 26.1025),
    (37.9838, 23.7275),
    (55.9533, -3.1883),
    (53.4808, -2.2426),
    (51.2277, 6.7735),
];
