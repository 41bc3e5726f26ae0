use super::*;
use crate::{EngineConfig, JobId, Skill};

const T0: Millis = Millis(1_700_000_000_000);

fn prop(id: &str, owner: &str) -> Property {
    Property {
        id: id.into(),
        owner_id: ResidentId::from(owner),
        name: "Flat 3".into(),
        address: Some("1 Main St".into()),
        lat: 52.5,
        lng: 13.4,
        created_at: T0,
    }
}

fn job(id: &str, owner: &str) -> NewJob {
    NewJob {
        id: JobId::from(id),
        resident_id: ResidentId::from(owner),
        lat: 0.0,
        lng: 0.0,
        skill: Skill::new("plumbing").unwrap(),
        description: String::new(),
    }
}

#[test]
fn properties_are_owned_checked_and_survive_snapshot() {
    let e = Engine::new(EngineConfig::default()).unwrap();
    e.create_property(prop("p1", "r1"), T0).unwrap();
    e.create_property(prop("p2", "r2"), T0).unwrap();
    assert_eq!(
        e.create_property(prop("p1", "r1"), T0),
        Err(EngineError::Conflict(
            "a property with this id already exists"
        ))
    );
    let mut bad = prop("p3", "r1");
    bad.lat = 91.0;
    assert!(matches!(
        e.create_property(bad, T0),
        Err(EngineError::InvalidInput { field: "lat", .. })
    ));
    let mut bad = prop("p3", "r1");
    bad.name = "  ".into();
    assert!(matches!(
        e.create_property(bad, T0),
        Err(EngineError::InvalidInput { field: "name", .. })
    ));
    let mine: Vec<String> = e
        .properties(Some(&ResidentId::from("r1")), 10)
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(mine, ["p1"]);
    assert_eq!(e.properties(None, 10).len(), 2);
    let back = Engine::restore(EngineConfig::default(), &e.snapshot()).unwrap();
    assert_eq!(back.property("p2"), e.property("p2"));
    assert_eq!(
        back.properties(Some(&ResidentId::from("r2")), 10).len(),
        1,
        "owner index rebuilt"
    );
}

#[test]
fn a_job_at_a_property_takes_its_position_and_only_its_owner_may() {
    let e = Engine::new(EngineConfig::default()).unwrap();
    e.create_property(prop("p1", "r1"), T0).unwrap();
    let r = e
        .create_job_at_property(job("j1", "r1"), "p1", vec![], T0)
        .unwrap();
    assert_eq!((r.job.lat, r.job.lng), (52.5, 13.4));
    assert_eq!(r.job.property_id.as_deref(), Some("p1"));
    assert_eq!(
        e.create_job_at_property(job("j2", "r2"), "p1", vec![], T0)
            .unwrap_err(),
        EngineError::NotFound("property not found")
    );
    assert_eq!(
        e.create_job_at_property(job("j3", "r1"), "nope", vec![], T0)
            .unwrap_err(),
        EngineError::NotFound("property not found")
    );
    // Replay of the events rebuilds the job with its property.
    let fresh = Engine::new(EngineConfig::default()).unwrap();
    let all: Vec<Event> = {
        let e2 = Engine::new(EngineConfig::default()).unwrap();
        let mut v = e2.create_property(prop("p1", "r1"), T0).unwrap();
        v.extend(
            e2.create_job_at_property(job("j1", "r1"), "p1", vec![], T0)
                .unwrap()
                .events,
        );
        v
    };
    fresh.replay(&all).unwrap();
    assert_eq!(
        fresh
            .job(&JobId::from("j1"))
            .unwrap()
            .property_id
            .as_deref(),
        Some("p1")
    );
}
