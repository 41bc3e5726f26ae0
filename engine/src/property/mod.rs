//! Properties: where work happens — a rental home, a building, a site
//! (API.md v1.1, "Properties"). A property belongs to one resident; jobs
//! (and, later, maintenance schedules) can be placed at one, taking its
//! position. Pure state under the engine's job lock, changed only by its
//! event, carried in snapshots.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::engine::{Engine, JobReceipt, NewJob};
use crate::error::EngineError;
use crate::event::{Event, EventKind};
use crate::geo::LatLng;
use crate::types::{Millis, ResidentId};

/// Longest name and address kept, bytes.
pub const MAX_NAME_BYTES: usize = 200;
pub const MAX_ADDRESS_BYTES: usize = 500;
/// Most properties one owner may have.
pub const MAX_PER_OWNER: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Property {
    pub id: String,
    pub owner_id: ResidentId,
    pub name: String,
    pub address: Option<String>,
    pub lat: f64,
    pub lng: f64,
    pub created_at: Millis,
}

impl Property {
    /// The checks creating it makes before anything changes.
    pub fn validate(&self) -> Result<(), EngineError> {
        LatLng::new(self.lat, self.lng)?;
        let name = self.name.trim();
        if name.is_empty() || self.name.len() > MAX_NAME_BYTES {
            return Err(EngineError::InvalidInput {
                field: "name",
                reason: "must be 1 to 200 bytes",
            });
        }
        if self
            .address
            .as_ref()
            .is_some_and(|a| a.len() > MAX_ADDRESS_BYTES)
        {
            return Err(EngineError::InvalidInput {
                field: "address",
                reason: "must be at most 500 bytes",
            });
        }
        if self.id.is_empty() || self.id.len() > 128 {
            return Err(EngineError::InvalidInput {
                field: "id",
                reason: "must be 1 to 128 bytes",
            });
        }
        Ok(())
    }
}

/// Every property, by id and by owner.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PropertyState {
    pub by_id: BTreeMap<String, Property>,
    #[serde(skip)]
    by_owner: BTreeMap<ResidentId, BTreeSet<String>>,
}

impl PropertyState {
    /// Rebuilds the owner index (after a snapshot is read).
    pub(crate) fn reindex(&mut self) {
        self.by_owner.clear();
        for p in self.by_id.values() {
            self.by_owner
                .entry(p.owner_id.clone())
                .or_default()
                .insert(p.id.clone());
        }
    }

    pub(crate) fn check(&self, kind: &EventKind) -> Result<(), EngineError> {
        if let EventKind::PropertyCreated { property } = kind {
            property.validate()?;
            if self.by_id.contains_key(&property.id) {
                return Err(EngineError::Conflict(
                    "a property with this id already exists",
                ));
            }
            let owned = self.by_owner.get(&property.owner_id).map_or(0, |s| s.len());
            if owned >= MAX_PER_OWNER {
                return Err(EngineError::Conflict("too many properties for this owner"));
            }
        }
        Ok(())
    }

    pub(crate) fn apply(&mut self, kind: &EventKind) {
        if let EventKind::PropertyCreated { property } = kind {
            self.by_owner
                .entry(property.owner_id.clone())
                .or_default()
                .insert(property.id.clone());
            self.by_id.insert(property.id.clone(), property.clone());
        }
    }

    pub(crate) fn owned_by<'a>(
        &'a self,
        owner: &ResidentId,
    ) -> impl Iterator<Item = &'a Property> + 'a {
        self.by_owner
            .get(owner)
            .into_iter()
            .flatten()
            .filter_map(|id| self.by_id.get(id))
    }
}

impl Engine {
    pub fn create_property(
        &self,
        property: Property,
        now: Millis,
    ) -> Result<Vec<Event>, EngineError> {
        let mut t = self.jobs.lock();
        let mut out = Vec::new();
        self.emit(
            &mut t,
            &mut out,
            now,
            EventKind::PropertyCreated { property },
        )?;
        Ok(out)
    }

    pub fn property(&self, id: &str) -> Option<Property> {
        self.jobs.lock().properties.by_id.get(id).cloned()
    }

    /// An owner's properties, or (`None`) every one, newest first, at most
    /// `limit`.
    pub fn properties(&self, owner: Option<&ResidentId>, limit: usize) -> Vec<Property> {
        let t = self.jobs.lock();
        let mut v: Vec<&Property> = match owner {
            Some(o) => t.properties.owned_by(o).collect(),
            None => t.properties.by_id.values().collect(),
        };
        v.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        v.into_iter().take(limit).cloned().collect()
    }

    /// Whether `worker` holds an offered or active job at property `id`,
    /// or a maintenance schedule there is assigned to them.
    pub fn works_at(&self, worker: &crate::WorkerId, id: &str) -> bool {
        let t = self.jobs.lock();
        t.holding
            .get(worker)
            .and_then(|s| t.jobs.get(s))
            .is_some_and(|j| j.property_id.as_deref() == Some(id))
            || t.maintenance
                .of_worker(worker)
                .filter_map(|s| t.maintenance.schedules.get(s))
                .any(|s| s.property_id == id)
    }

    /// A job at a property: its position is the property's, and the
    /// property must be `job.resident_id`'s.
    pub fn create_job_at_property(
        &self,
        job: NewJob,
        property_id: &str,
        parts: Vec<crate::stock::PartLine>,
        now: Millis,
    ) -> Result<JobReceipt, EngineError> {
        let opts = crate::jobs::JobOptions {
            property_id: Some(property_id.to_owned()),
            parts,
            ..Default::default()
        };
        self.create_job_opts(job, opts, now)
    }

    /// A job with its options; at a property, the job takes its position
    /// and the property must be `job.resident_id`'s.
    pub fn create_job_opts(
        &self,
        mut job: NewJob,
        opts: crate::jobs::JobOptions,
        now: Millis,
    ) -> Result<JobReceipt, EngineError> {
        if let Some(property_id) = &opts.property_id {
            let p = {
                let t = self.jobs.lock();
                t.properties.by_id.get(property_id).cloned()
            }
            .ok_or(EngineError::NotFound("property not found"))?;
            if p.owner_id != job.resident_id {
                return Err(EngineError::NotFound("property not found"));
            }
            job.lat = p.lat;
            job.lng = p.lng;
        }
        self.create_job_with(job, opts, now)
    }
}

#[cfg(test)]
mod tests;
