//! Reading and rewriting a JSON `POST /v2/generate` body: pick out the
//! model and the client's `webhookUrl`, and point `webhookUrl` at the
//! governor's callback. Every other member keeps its order and its exact
//! text (values are kept as raw JSON), so Sync sees what the client sent
//! but for that one URL.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// A JSON object's members in order, values as raw JSON. A repeated name
/// keeps its first place and its last value (as a map would).
#[derive(Clone, Debug, Default)]
struct Members(Vec<(String, Box<RawValue>)>);

impl Members {
    fn get(&self, name: &str) -> Option<&RawValue> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| &**v)
    }

    fn insert(&mut self, name: String, value: Box<RawValue>) {
        match self.0.iter_mut().find(|(k, _)| *k == name) {
            Some((_, v)) => *v = value,
            None => self.0.push((name, value)),
        }
    }
}

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
                let mut m = Members::default();
                while let Some((k, v)) = map.next_entry::<String, Box<RawValue>>()? {
                    m.insert(k, v);
                }
                Ok(m)
            }
        }
        d.deserialize_map(V)
    }
}

impl serde::Serialize for Members {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

/// What the governor needs from a generate body.
#[derive(Clone, Debug)]
pub struct GenerateBody {
    pub model: Option<String>,
    pub webhook_url: Option<String>,
    members: Members,
}

impl GenerateBody {
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let members: Members = serde_json::from_slice(bytes).map_err(|e| format!("malformed JSON body: {e}"))?;
        let string = |name: &str| -> Result<Option<String>, String> {
            match members.get(name) {
                None => Ok(None),
                Some(raw) if raw.get() == "null" => Ok(None),
                Some(raw) => crate::wire::json::from_str::<String>(raw.get())
                    .map(Some)
                    .map_err(|_| format!("`{name}` must be a string")),
            }
        };
        Ok(Self { model: string("model")?, webhook_url: string("webhookUrl")?, members })
    }

    /// The body with `webhookUrl` set to `callback`.
    pub fn with_webhook(mut self, callback: &str) -> Vec<u8> {
        let value = serde_json::to_string(callback).ok().and_then(|s| RawValue::from_string(s).ok());
        if let Some(value) = value {
            self.members.insert("webhookUrl".to_owned(), value);
        }
        serde_json::to_vec(&self.members).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_only_the_webhook() {
        let body = br#"{"model":"lipsync-2","input":[{"type":"video","url":"https://x/v.mp4"}],"options":{"temperature":0.50},"webhookUrl":"https://c/h"}"#;
        let g = GenerateBody::parse(body).unwrap();
        assert_eq!(g.model.as_deref(), Some("lipsync-2"));
        assert_eq!(g.webhook_url.as_deref(), Some("https://c/h"));
        let out = String::from_utf8(g.with_webhook("https://gov/cb/t")).unwrap();
        assert_eq!(
            out,
            r#"{"model":"lipsync-2","input":[{"type":"video","url":"https://x/v.mp4"}],"options":{"temperature":0.50},"webhookUrl":"https://gov/cb/t"}"#
        );
    }

    #[test]
    fn adds_a_webhook_and_refuses_bad_bodies() {
        let g = GenerateBody::parse(br#"{"model":"sync-3"}"#).unwrap();
        assert_eq!(g.webhook_url, None);
        assert_eq!(g.with_webhook("u"), br#"{"model":"sync-3","webhookUrl":"u"}"#.to_vec());
        assert!(GenerateBody::parse(b"[1]").is_err());
        assert!(GenerateBody::parse(b"{").is_err());
        assert!(GenerateBody::parse(br#"{"webhookUrl":5}"#).is_err());
    }
}

#[cfg(test)]
mod repeated {
    use super::*;

    #[test]
    fn a_repeated_member_keeps_its_place_and_its_last_value() {
        let g = GenerateBody::parse(br#"{"webhookUrl":"https://a/1","model":"m","webhookUrl":"https://b/2"}"#).unwrap();
        assert_eq!(g.webhook_url.as_deref(), Some("https://b/2"));
        let out = String::from_utf8(g.with_webhook("https://gov/cb")).unwrap();
        assert_eq!(out, r#"{"webhookUrl":"https://gov/cb","model":"m"}"#);
    }
}
