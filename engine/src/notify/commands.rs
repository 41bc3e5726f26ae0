//! The domain's commands and reads on the engine. Each takes the job lock
//! (the one that assigns `seq`), checks, and emits its event.

use crate::engine::Engine;
use crate::error::EngineError;
use crate::event::{Event, EventKind};
use crate::types::Millis;

use super::{NotifyPrefs, Webhook};

impl Engine {
    /// Sets a user's channels (all empty: forgets them).
    pub fn set_notify_prefs(
        &self,
        user: &str,
        prefs: NotifyPrefs,
        now: Millis,
    ) -> Result<Vec<Event>, EngineError> {
        let mut t = self.jobs.lock();
        let mut out = Vec::new();
        let kind = EventKind::NotifyPrefsSet {
            user: user.to_owned(),
            prefs,
        };
        self.emit(&mut t, &mut out, now, kind)?;
        Ok(out)
    }

    pub fn add_webhook(&self, webhook: Webhook, now: Millis) -> Result<Vec<Event>, EngineError> {
        let mut t = self.jobs.lock();
        let mut out = Vec::new();
        self.emit(&mut t, &mut out, now, EventKind::WebhookAdded { webhook })?;
        Ok(out)
    }

    pub fn remove_webhook(&self, id: &str, now: Millis) -> Result<Vec<Event>, EngineError> {
        let mut t = self.jobs.lock();
        let mut out = Vec::new();
        let kind = EventKind::WebhookRemoved { id: id.to_owned() };
        self.emit(&mut t, &mut out, now, kind)?;
        Ok(out)
    }

    /// The endpoint answered 410 Gone: nothing more goes to it. Disabling
    /// one already disabled changes nothing.
    pub fn disable_webhook(&self, id: &str, now: Millis) -> Result<Vec<Event>, EngineError> {
        let mut t = self.jobs.lock();
        if t.notify.webhooks.get(id).is_some_and(|w| w.disabled) {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        let kind = EventKind::WebhookDisabled { id: id.to_owned() };
        self.emit(&mut t, &mut out, now, kind)?;
        Ok(out)
    }

    /// A user's channels (the defaults when never set).
    pub fn notify_prefs(&self, user: &str) -> NotifyPrefs {
        self.jobs
            .lock()
            .notify
            .prefs
            .get(user)
            .cloned()
            .unwrap_or_default()
    }

    /// Every webhook endpoint, by id.
    pub fn webhooks(&self) -> Vec<Webhook> {
        self.jobs.lock().notify.webhooks.values().cloned().collect()
    }

    pub fn webhook(&self, id: &str) -> Option<Webhook> {
        self.jobs.lock().notify.webhooks.get(id).cloned()
    }
}
