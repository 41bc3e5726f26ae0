//! Checks every server message against API.md: known `type`, every
//! required field present with the right JSON type. A violation is an
//! error kind the report counts.

use serde_json::Value;

const STATUSES: &[&str] = &[
    "searching",
    "offered",
    "accepted",
    "arrived",
    "completed",
    "cancelled",
    "unmatched",
];

fn is_time(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() >= 20 && s.ends_with('Z') && s.as_bytes()[10] == b'T')
}

fn opt_time(v: &Value) -> bool {
    v.is_null() || is_time(v)
}

/// The contract's `Job` object.
pub fn job(j: &Value) -> Result<(), &'static str> {
    let ok = j["id"].is_string()
        && j["resident_id"].is_string()
        && j["lat"].is_number()
        && j["lng"].is_number()
        && j["skill"].is_string()
        && j["description"].is_string()
        && j["status"].as_str().is_some_and(|s| STATUSES.contains(&s))
        && (j["worker_id"].is_null() || j["worker_id"].is_string())
        && j["attempts"].is_u64()
        && is_time(&j["created_at"])
        && [
            "offered_at",
            "accepted_at",
            "arrived_at",
            "completed_at",
            "cancelled_at",
        ]
        .iter()
        .all(|k| j.get(*k).is_some_and(opt_time))
        && j.get("fare_cents")
            .is_some_and(|f| f.is_null() || f.is_i64());
    if ok {
        Ok(())
    } else {
        Err("bad_job_shape")
    }
}

/// Any server → client message.
pub fn message(m: &Value) -> Result<&str, &'static str> {
    let t = m["type"].as_str().ok_or("message_without_type")?;
    let ok = match t {
        "offer" => {
            m["seq"].is_u64()
                && m["job_id"].is_string()
                && m["lat"].is_number()
                && m["lng"].is_number()
                && m["skill"].is_string()
                && m["description"].is_string()
                && m["distance_m"].is_number()
                && is_time(&m["expires_at"])
        }
        "offer_revoked" => {
            m["seq"].is_u64()
                && m["job_id"].is_string()
                && m["reason"]
                    .as_str()
                    .is_some_and(|r| ["expired", "cancelled", "declined"].contains(&r))
        }
        "job" if !m["seq"].is_u64() => false,
        "job" => return job(&m["job"]).map(|_| t),
        "error" => m["code"].is_string() && m["message"].is_string(),
        "ack" => m["req_id"].is_string() || m["req_id"].is_i64() || m["req_id"].is_u64(),
        "resumed" => m["seq"].is_u64() && (m["gap"].is_null() || m["gap"].is_boolean()),
        "pong" => true,
        // v1.2: the worker on the way, to the job's resident.
        "tracking" => {
            m["seq"].is_u64()
                && m["job_id"].is_string()
                && m["lat"].is_number()
                && m["lng"].is_number()
                && is_time(&m["at"])
                && m["eta_s"].is_u64()
        }
        _ => return Err("unknown_message_type"),
    };
    if ok {
        Ok(t)
    } else {
        Err("bad_message_shape")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shapes() {
        let j = json!({"id":"j","resident_id":"r","lat":1.0,"lng":2.0,"skill":"s","description":"",
            "status":"offered","worker_id":"w","attempts":1,"created_at":"2026-01-01T00:00:00.000Z",
            "offered_at":"2026-01-01T00:00:00.000Z","accepted_at":null,"arrived_at":null,
            "completed_at":null,"cancelled_at":null,"fare_cents":null});
        assert!(job(&j).is_ok());
        let mut bad = j.clone();
        bad["status"] = json!("lost");
        assert!(job(&bad).is_err());
        let mut bad = j.clone();
        bad.as_object_mut().unwrap().remove("cancelled_at");
        assert!(job(&bad).is_err());
        assert_eq!(message(&json!({"type":"job","job":j,"seq":7})), Ok("job"));
        assert!(message(&json!({"type":"job","job":j})).is_err());
        assert_eq!(
            message(&json!({"type":"resumed","seq":7,"gap":true})),
            Ok("resumed")
        );
        assert_eq!(message(&json!({"type":"ack","req_id":3})), Ok("ack"));
        assert!(message(&json!({"type":"offer","job_id":"j"})).is_err());
        assert!(message(&json!({"type":"hello"})).is_err());
        let t = json!({"type":"tracking","job_id":"j","lat":1.0,"lng":2.0,
            "at":"2026-01-01T00:00:00.000Z","eta_s":120,"seq":9});
        assert_eq!(message(&t), Ok("tracking"));
        let mut bad = t.clone();
        bad["eta_s"] = json!(-1);
        assert!(message(&bad).is_err());
    }
}
