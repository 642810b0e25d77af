//! The [`Storage`] of a REST backend (GCS, Azure), written once: a backend
//! says how it sends each kind of request ([`Api`]) and how it starts a
//! writer ([`Remote`]); key checks, listing pages, resumed downloads and the
//! conditional small writes are the same for all.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use reqwest::blocking::{Client, RequestBuilder, Response};

use super::http::{self, Condition, Service, Small};
use super::resume::Download;
use super::retry::{Backoff, Failure};
use super::{ObjectWriter, Storage, Version, check_key};

/// One page of a listing: its keys, and the next page's token.
pub(super) type Page = (Vec<String>, Option<String>);

/// The requests of one REST backend, on keys already checked. Shared with
/// upload and download threads.
pub(super) trait Api: Send + Sync + Sized + 'static {
    /// How the service's answers are judged.
    const SERVICE: Service;

    /// What names the storage in messages, and how requests are retried.
    fn common(&self) -> &Common;

    /// The size of the object at `key`; an error when there is none.
    fn size(&self, key: &str) -> Result<u64>;

    /// Starts reading `key` at `offset`.
    fn get(&self, key: &str, offset: u64) -> Result<Response, Failure<String>>;

    /// One page of the keys under `prefix` (a folder path ending in `/`, or
    /// `""`), from `token` on: the keys and the next page's token.
    fn page(&self, prefix: &str, token: Option<&str>, what: &str) -> Result<Page>;

    /// Removes `key`; a missing key is not an error.
    fn delete(&self, key: &str) -> Result<()>;

    /// Writes a small object in one request if `condition` holds: its new
    /// version, or `None` when it did not.
    fn put_small(&self, key: &str, data: &[u8], condition: Condition) -> Result<Option<Version>>;

    /// Reads a small object whole with its version, or `None` when there is none.
    fn get_versioned(&self, key: &str) -> Result<Option<(Vec<u8>, Version)>>;

    /// Removes an object if it is still at `version`.
    fn delete_if(&self, key: &str, version: &Version) -> Result<bool>;

    /// Until when a retention holds `key` (a date still to come), if one does.
    fn retained_until(&self, _key: &str) -> Result<Option<chrono::DateTime<chrono::Utc>>> {
        Ok(None)
    }

    /// Sends a small write through [`http::put_small`]; a condition unmet
    /// on a retry is read back with [`Api::get_versioned`].
    fn send_small(
        &self,
        key: &str,
        data: &[u8],
        what: &str,
        make: impl Fn() -> Result<RequestBuilder>,
        unmet: impl Fn(&Response) -> bool,
    ) -> Result<Small> {
        let backoff = &self.common().backoff;
        let read_back = || self.get_versioned(key);
        http::put_small(&Self::SERVICE, backoff, what, data, make, unmet, read_back)
    }

    /// `storage `x` (gs://bucket/key): action`.
    fn what(&self, action: &str, key: &str) -> String {
        format!("{}/{key}): {action}", self.common().label)
    }
}

/// What every request of a REST backend needs: the client, the endpoint,
/// how requests are retried, and what names the storage in messages.
pub(super) struct Common {
    /// The HTTP client: its timeouts and dbkeep's user agent.
    pub http: Client,
    /// The endpoint, without a trailing `/`.
    pub base: String,
    /// How requests are retried.
    pub backoff: Backoff,
    /// The start of every message: `storage `x` (gs://bucket`.
    pub label: String,
    /// Where it is, for messages: `gs://bucket`, `az://container`.
    pub location: String,
}

impl Common {
    /// Storage `name` at `location`, reached at `base`, with the default
    /// retries.
    pub fn new(name: &str, location: String, base: String) -> reqwest::Result<Common> {
        let http = Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(300))
            .user_agent(concat!("dbkeep/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Common {
            http,
            base,
            backoff: Backoff::default(),
            label: format!("storage `{name}` ({location}"),
            location,
        })
    }
}

/// A REST backend's storage: its name, its requests, and its writer.
pub(super) trait Remote: Send + Sync {
    /// The requests it sends.
    type Api: Api;

    /// The storage's name and its requests.
    fn parts(&self) -> (&str, &Arc<Self::Api>);

    /// Starts writing `key`, a checked key; nothing is visible until commit.
    fn writer(&self, key: &str) -> Result<Box<dyn ObjectWriter>>;
}

impl<R: Remote> Storage for R {
    fn name(&self) -> &str {
        self.parts().0
    }

    fn location(&self) -> String {
        self.parts().1.common().location.clone()
    }

    fn create(&self, key: &str) -> Result<Box<dyn ObjectWriter>> {
        check_key(key)?;
        self.writer(key)
    }

    fn open(&self, key: &str) -> Result<Box<dyn Read + Send>> {
        check_key(key)?;
        let api = self.parts().1;
        let size = api.size(key)?;
        let (fetcher, key) = (api.clone(), key.to_string());
        Ok(Box::new(Download::new(
            api.what("download", &key),
            size,
            api.common().backoff,
            move |offset| fetcher.get(&key, offset),
        )))
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let api = self.parts().1;
        let prefix = super::folder(prefix);
        let what = api.what("cannot list", &prefix);
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let (page, next) = api.page(&prefix, token.as_deref(), &what)?;
            keys.extend(page);
            match next {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        keys.sort();
        Ok(keys)
    }

    fn delete(&self, key: &str) -> Result<()> {
        check_key(key)?;
        self.parts().1.delete(key)
    }

    fn create_if_absent(&self, key: &str, data: &[u8]) -> Result<Option<Version>> {
        check_key(key)?;
        self.parts().1.put_small(key, data, Condition::Absent)
    }

    fn get_versioned(&self, key: &str) -> Result<Option<(Vec<u8>, Version)>> {
        check_key(key)?;
        self.parts().1.get_versioned(key)
    }

    fn replace_if(&self, key: &str, data: &[u8], version: &Version) -> Result<Option<Version>> {
        check_key(key)?;
        self.parts()
            .1
            .put_small(key, data, Condition::Match(version))
    }

    fn delete_if(&self, key: &str, version: &Version) -> Result<bool> {
        check_key(key)?;
        self.parts().1.delete_if(key, version)
    }

    fn put(&self, key: &str, data: &[u8]) -> Result<()> {
        check_key(key)?;
        self.parts().1.put_small(key, data, Condition::None)?;
        Ok(())
    }

    fn retained_until(&self, key: &str) -> Result<Option<chrono::DateTime<chrono::Utc>>> {
        check_key(key)?;
        self.parts().1.retained_until(key)
    }
}
