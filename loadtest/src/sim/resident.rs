//! A simulated resident: follows its jobs on its socket (coming back after
//! a crash in chaos mode), and the open-loop job creator.

use super::resume::{my_jobs, read_resume, reopen_socket};
use super::*;

/// A resident's socket: its jobs are pushed without subscribing. In chaos
/// mode it reconnects with `?since=` and re-reads its jobs after a gap.
pub async fn resident_socket(sh: Arc<Shared>, i: usize) {
    let token = mint(&sh.secret, &format!("lt-r-{i}"), "resident", None);
    let client = sh.opts.workers + i;
    let Some(mut ws) = open_socket(&sh, client, &token).await else {
        return;
    };
    let mut stop = sh.stop.clone();
    let mut last_seq = 0u64;
    loop {
        tokio::select! {
            m = ws.next() => {
                match m.map(|m| m.map(|m| decode(&sh.stats, m))) {
                    Some(Ok(Ok(Some(v)))) => {
                        if let Some(s) = v["seq"].as_u64() {
                            last_seq = last_seq.max(s);
                        }
                        on_resident_message(&sh, &v);
                    }
                    Some(Ok(Ok(None))) => {}
                    _ if sh.opts.chaos.is_some() => {
                        sh.stats.msgs.add("chaos.disconnected", 1);
                        let Some((again, node)) = reopen_socket(&sh, client, &token, last_seq).await else {
                            break;
                        };
                        ws = again;
                        let mut gap = last_seq == 0;
                        if last_seq > 0 {
                            let mut replayed = Vec::new();
                            match read_resume(&sh, &mut ws, |v| replayed.push(v)).await {
                                Some(g) => gap = g,
                                None => continue, // closed again: the next read reconnects
                            }
                            for v in replayed {
                                if let Some(s) = v["seq"].as_u64() {
                                    last_seq = last_seq.max(s);
                                }
                                on_resident_message(&sh, &v);
                            }
                        }
                        if gap {
                            for j in my_jobs(&sh, node, &token).await.unwrap_or_default() {
                                on_resident_message(&sh, &json!({"type": "job", "job": j}));
                            }
                        }
                    }
                    _ => break,
                }
            }
            _ = async { let _ = stop.wait_for(|s| *s).await; } => {
                let _ = ws.close(None).await;
                let _ = tokio::time::timeout(Duration::from_secs(2), async {
                    while let Some(Ok(_)) = ws.next().await {}
                }).await;
                break;
            }
        }
    }
    let stopping = *sh.stop.borrow();
    if !stopping {
        sh.stats.error("socket_closed_by_server");
    }
    sh.stats.connections_open.fetch_sub(1, Ordering::Relaxed);
}

fn on_resident_message(sh: &Shared, v: &Value) {
    match v["type"].as_str() {
        Some("job") => {
            let j = &v["job"];
            let Some((seq, _)) = j["description"].as_str().and_then(parse_description) else {
                return;
            };
            let status = j["status"].as_str().unwrap_or("");
            if status == "accepted" {
                if let Some((_, t)) = j["id"]
                    .as_str()
                    .and_then(|id| sh.stats.accepted_at.remove(id))
                {
                    sh.stats.accept_to_resident.record(t.elapsed());
                }
            }
            sh.stats.track(seq, |t| match status {
                "accepted" | "arrived" => t.resident_saw_accepted = true,
                "completed" => {
                    t.resident_saw_accepted = true;
                    t.resident_saw_completed = true;
                }
                "cancelled" => t.cancelled = true,
                _ => {}
            });
        }
        Some("error") => sh
            .stats
            .error(server_error(v["code"].as_str().unwrap_or(""))),
        _ => {}
    }
}

/// Creates one job at its scheduled time and records how long it took
/// from that time (so a slow server cannot hide queueing: no coordinated omission).
pub async fn create_job(sh: Arc<Shared>, seq: u64, sched: Instant, rng_seed: u64) {
    let o = &sh.opts;
    let mut rng = StdRng::seed_from_u64(rng_seed);
    let r = (seq as usize) % o.residents.max(1);
    let token = mint(&sh.secret, &format!("lt-r-{r}"), "resident", None);
    let city = r % o.cities.clamp(1, CITIES.len());
    let home = near(&mut rng, CITIES[city], 6000.0);
    let skill = &o.skills[rng.random_range(0..o.skills.len())];
    sh.stats
        .track(seq, |t| t.place = Some((city, skill.clone())));
    let sched_us = sched.duration_since(sh.start).as_micros() as u64;
    let body = json!({"lat": home.0, "lng": home.1, "skill": skill, "description": describe(seq, sched_us)});
    sh.stats.msgs.add("out.create", 1);
    let chaos = o.chaos.is_some();
    let give_up = Instant::now() + Duration::from_secs(60);
    let mut attempt = 0usize;
    loop {
        let node = (seq as usize + attempt) % sh.bases.len();
        let mut req = sh
            .http
            .post(format!("{}/v1/jobs", sh.bases[node]))
            .bearer_auth(&token)
            .json(&body);
        if chaos {
            // A retry after a crash must not create the job twice.
            req = req.header("Idempotency-Key", format!("lt-{seq}"));
        }
        let resp = req.send().await;
        let retry = match resp {
            Ok(r)
                if r.status() == reqwest::StatusCode::CREATED
                    || (chaos && r.status() == reqwest::StatusCode::OK) =>
            {
                if r.status() == reqwest::StatusCode::OK {
                    sh.stats.msgs.add("chaos.create_replayed", 1);
                }
                if seq < SATURATE_BASE {
                    sh.stats
                        .job_create
                        .record(Instant::now().saturating_duration_since(sched));
                }
                if let Ok(v) = r.json::<Value>().await {
                    if check::job(&v).is_err() {
                        sh.stats.error("bad_job_shape");
                    }
                    if let Some(id) = v["id"].as_str() {
                        sh.stats.job_ids.insert(id.to_string(), seq);
                    }
                    sh.stats.track(seq, |t| t.created = true);
                }
                false
            }
            Ok(r) if chaos && r.status().is_server_error() => true,
            Ok(r) => {
                let kind = match r.status().as_u16() {
                    429 => "create_rate_limited",
                    503 => "create_unavailable",
                    s if s >= 500 => "create_5xx",
                    _ => "create_4xx",
                };
                sh.stats.error(kind);
                false
            }
            Err(_) if chaos => true,
            Err(_) => {
                sh.stats.error("create_transport_error");
                false
            }
        };
        if !retry {
            return;
        }
        if Instant::now() > give_up || *sh.stop.borrow() {
            sh.stats.error("create_never_acknowledged");
            return;
        }
        sh.stats.msgs.add("chaos.create_retried", 1);
        attempt += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
