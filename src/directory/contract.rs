//! The directory's typed contract: one request type per call, its reply
//! type known at compile time ([`DirectoryCall::Reply`]). On the wire a call
//! is the [`Request`] JSON the singleton decodes (the object's RPC method
//! `directory(body)`), and its reply the JSON of `Reply`.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Entries listed at most by one call.
pub const MAX_LIST: u32 = 1_000;

/// A call into the directory and the reply it gets.
pub trait DirectoryCall {
    type Reply: DeserializeOwned;
    fn request(&self) -> Request;
}

/// Every call, as the singleton decodes it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Request {
    Announce(Announce),
    List(List),
    Page(PageOf),
}

/// The account was active at `at` (epoch ms); replies how many rows it touched.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Announce {
    pub account: String,
    pub at: u64,
}

impl DirectoryCall for Announce {
    type Reply = u64;
    fn request(&self) -> Request {
        Request::Announce(self.clone())
    }
}

/// The accounts seen, most recently seen first.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct List {
    pub limit: u32,
}

impl DirectoryCall for List {
    type Reply = Vec<Entry>;
    fn request(&self) -> Request {
        Request::List(self.clone())
    }
}

/// Accounts by name from `offset` (the scrape's pages), and how many there are.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PageOf {
    pub offset: u32,
    pub limit: u32,
}

impl DirectoryCall for PageOf {
    type Reply = Page;
    fn request(&self) -> Request {
        Request::Page(self.clone())
    }
}

/// One page of the accounts by name.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Page {
    pub total: u64,
    pub accounts: Vec<String>,
}

/// One account as the directory knows it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub account: String,
    pub first_seen: u64,
    pub last_seen: u64,
}
