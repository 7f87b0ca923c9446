//! Column values to and from SQLite: what every table's code binds and reads.

use governor_core::storage::row::StoreError;
use worker::SqlStorageValue as V;

/// One column of a raw row.
pub(crate) fn col_str(row: &mut [V], i: usize) -> Option<String> {
    match row.get_mut(i) {
        Some(V::String(s)) => Some(std::mem::take(s)),
        _ => None,
    }
}

pub(crate) fn col_u64(row: &[V], i: usize) -> Option<u64> {
    match row.get(i) {
        Some(V::Integer(n)) => u64::try_from(*n).ok(),
        Some(V::Float(f)) if *f >= 0.0 => Some(*f as u64),
        _ => None,
    }
}

pub(crate) fn err(e: worker::Error) -> StoreError {
    StoreError(e.to_string())
}

pub(crate) fn int(v: u64) -> V {
    V::Integer(i64::try_from(v).unwrap_or(i64::MAX))
}

pub(crate) fn text(s: &str) -> V {
    V::String(s.to_owned())
}

pub(crate) fn json<T: serde::Serialize>(v: &T) -> V {
    V::String(serde_json::to_string(v).unwrap_or_default())
}
