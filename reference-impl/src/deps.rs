//! Everything a handler needs, built once per instance at init.

use crate::aws::{Clients, Endpoints, load_sdk_config};
use crate::config::Settings;
use crate::connections::Poster;
use crate::dlq::DeadLetterQueue;
use crate::error::Result;
use crate::fanout::Fanout;
use crate::retry::Backoff;
use crate::store::ConnectionStore;

pub struct Deps {
    pub settings: Settings,
    pub clients: Clients,
}

impl Deps {
    /// Production wiring: settings from the environment, endpoints from the SDK's config.
    pub async fn from_env() -> Result<Self> {
        let settings = Settings::from_env()?;
        let clients = Clients::new(load_sdk_config().await, Endpoints::default(), &settings);
        Ok(Deps { settings, clients })
    }

    pub fn store(&self) -> Result<ConnectionStore> {
        Ok(ConnectionStore::new(
            self.clients.dynamodb.clone(),
            self.settings.table()?,
            &self.settings.room_index,
            self.settings.scan_page_limit,
            self.settings.faults.clone(),
        ))
    }

    /// A poster for the API at `fallback_url` (used only when no endpoint is configured).
    pub fn poster(&self, fallback_url: Option<&str>) -> Poster {
        Poster::new(
            self.clients.management(fallback_url),
            self.settings.faults.clone(),
        )
    }

    pub fn fanout(&self, fallback_url: Option<&str>) -> Result<Fanout> {
        Ok(Fanout {
            store: self.store()?,
            poster: self.poster(fallback_url),
            dlq: self
                .settings
                .dlq_url
                .as_deref()
                .map(|url| DeadLetterQueue::new(self.clients.sqs.clone(), url)),
            backoff: Backoff {
                base: self.settings.retry_base,
                cap: self.settings.retry_cap,
                max_attempts: self.settings.post_max_attempts,
            },
            concurrency: self.settings.post_concurrency,
            delete_gone: self.settings.delete_gone,
        })
    }
}
