//! The two kinds of paging the Management API's lists offer, read from a query string and
//! written back as the spec's response shapes.
//!
//! Spec: offset paging (`page`, `per_page`, `include_totals` → `{start, limit, total, <key>}`,
//! else a bare array) and, on some lists, checkpoint paging (`from`, `take` ≤ 100 →
//! `{<key>, next?}`, `next` present while more remain). A checkpoint here is opaque: the
//! URL-safe base64 of the sort key of the next page's first item, so a page starts where the
//! last one stopped even when items in between were removed.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::error::ErrorReply;
use super::routes::Params;

/// Offset paging of one list.
#[derive(Debug, Clone, Copy)]
pub(super) struct Offset {
    pub(super) page: usize,
    pub(super) per_page: usize,
    pub(super) totals: bool,
}

impl Offset {
    /// How many items come before the page.
    pub(super) fn skip(&self) -> usize {
        self.page.saturating_mul(self.per_page)
    }

    /// Spec: `{start, limit, total, <key>}` with `include_totals`, else the bare array.
    pub(super) fn body(&self, key: &str, items: Vec<Value>, total: usize) -> Value {
        if !self.totals {
            return Value::Array(items);
        }
        json!({
            "start": self.skip(),
            "limit": self.per_page,
            "total": total,
            key: items,
        })
    }
}

/// How a request pages.
#[derive(Debug, Clone)]
pub(super) enum Paging {
    Offset(Offset),
    /// Start at the item whose sort key is `from` (or the first), `take` items.
    Checkpoint {
        from: Option<String>,
        take: usize,
    },
}

/// What a list accepts.
pub(super) struct Rules {
    /// Offers `from`/`take`.
    pub(super) checkpoint: bool,
    /// Spec: the `per_page` (and `take`) without one; 50 on the lists of roles and
    /// organizations.
    pub(super) default: usize,
    /// The spec's `maximum` of `page`, where it gives one.
    pub(super) max_page: Option<i64>,
    /// Spec ("Checkpoint pagination must be used if you need to retrieve more than 1000"):
    /// offset paging stops at the first 1,000 items, as `GET /users` does (facts: "The 1000
    /// cap"), with the same 400 `invalid_paging`.
    pub(super) cap: bool,
}

impl Paging {
    pub(super) fn parse(params: &Params, rules: &Rules) -> Result<Paging, ErrorReply> {
        let page = params.integer("page", 0, rules.max_page)?;
        let per_page = params.integer("per_page", 1, Some(100))?;
        let totals = params.boolean("include_totals")?.unwrap_or(false);
        if rules.checkpoint {
            // Spec: take is 1..=100.
            let take = params.integer("take", 1, Some(100))?;
            if params.has("from") || take.is_some() {
                if page.is_some() || per_page.is_some() {
                    // Stricter than silence: one kind of paging at a time.
                    return Err(ErrorReply::invalid_query(
                        "Use either checkpoint paging (from, take) or offset paging (page, per_page), not both.",
                    ));
                }
                let from = params.get("from").map(decode).transpose()?;
                let take = take.map_or(rules.default, |t| t as usize);
                return Ok(Paging::Checkpoint { from, take });
            }
        }
        let offset = Offset {
            page: page.unwrap_or(0) as usize,
            per_page: per_page.map_or(rules.default, |p| p as usize),
            totals,
        };
        if rules.cap && (offset.page + 1).saturating_mul(offset.per_page) > 1000 {
            return Err(ErrorReply::invalid_paging());
        }
        Ok(Paging::Offset(offset))
    }
}

/// Spec: `{<key>: items, next?}`, `next` the checkpoint of the item after the page.
pub(super) fn checkpoint_body(key: &str, items: Vec<Value>, next: Option<&str>) -> Value {
    let mut body = json!({ key: items });
    if let Some(next) = next {
        body["next"] = encode(next).into();
    }
    body
}

fn encode(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(key.as_bytes())
}

/// Stricter than silence: a checkpoint the sandbox never gave is refused.
fn decode(from: &str) -> Result<String, ErrorReply> {
    URL_SAFE_NO_PAD
        .decode(from)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| {
            ErrorReply::invalid_query(format!(
                "Query validation error: 'from' is not a checkpoint this list gave: {from}."
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_reads_back_as_the_key_it_names() {
        let key = "auth0|5f1c2e3d4b5a697887766554";
        assert_eq!(decode(&encode(key)).unwrap(), key);
        assert!(decode("not base64!").is_err());
    }
}
