//! A ledger page as JSON (`{"rows": [...], "nextCursor"}`), NDJSON (one row
//! a line) or CSV (a header line, cells that a spreadsheet never runs as a
//! formula). The next cursor also travels in the `Ledger-Next-Cursor`
//! header, for NDJSON and CSV.

use serde::Serialize;

use crate::budget::{CostSource, MicroUsd};
use crate::ids::GenerationId;
use crate::ledger::query::Format;
use crate::ledger::LedgerRow;
use crate::time::rfc3339;

/// A ledger page as the Worker sends it on: the encoded body, its content
/// type and the cursor of the next page.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LedgerPage {
    pub content_type: String,
    pub body: String,
    pub next_cursor: Option<String>,
}

/// The header carrying the next page's cursor.
pub const NEXT_CURSOR_HEADER: &str = "Ledger-Next-Cursor";

/// A row as clients read it (no internal fields).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RowView<'a> {
    id: String,
    key: Option<&'a str>,
    client: &'a str,
    model: Option<&'a str>,
    generation_id: Option<&'a str>,
    received: String,
    admitted: Option<String>,
    submitted: Option<String>,
    ended: Option<String>,
    status: Option<&'a str>,
    output_duration: Option<f64>,
    estimated_usd: Option<f64>,
    estimated_micro_usd: Option<u64>,
    estimate_source: Option<CostSource>,
    settled_usd: Option<f64>,
    settled_micro_usd: Option<u64>,
    settled_from: Option<CostSource>,
    waited_ms: u64,
    upstream429s: u32,
}

fn view(r: &LedgerRow) -> RowView<'_> {
    RowView {
        id: r.id.to_string(),
        key: r.key.as_deref(),
        client: &r.client,
        model: r.model.as_deref(),
        generation_id: r.generation.as_ref().map(GenerationId::as_str),
        received: rfc3339(r.received),
        admitted: r.admitted.map(rfc3339),
        submitted: r.submitted.map(rfc3339),
        ended: r.ended.map(rfc3339),
        status: r.status.as_ref().map(|s| s.as_str()),
        output_duration: r.output_ms.map(|ms| ms as f64 / 1000.0),
        estimated_usd: r.estimate.map(|e| e.cost.usd()),
        estimated_micro_usd: r.estimate.map(|e| e.cost.0),
        estimate_source: r.estimate.map(|e| e.source),
        settled_usd: r.settled.map(MicroUsd::usd),
        settled_micro_usd: r.settled.map(|s| s.0),
        settled_from: r.settled_from,
        waited_ms: r.waited_ms,
        upstream429s: r.upstream_429s,
    }
}

const CSV_HEADER: &str = "id,key,client,model,generation_id,received,admitted,submitted,ended,status,output_duration,estimated_usd,estimate_source,settled_usd,settled_from,waited_ms,upstream_429s";

/// One CSV cell: quoted when it holds a separator, a quote or a line
/// break; a leading `=`, `+`, `-`, `@` (a formula to a spreadsheet) is
/// prefixed with `'`.
fn cell(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{s}") } else { s.to_owned() };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

fn source(s: Option<CostSource>) -> String {
    s.and_then(|s| serde_json::to_value(s).ok()).and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

fn csv_line(r: &LedgerRow) -> String {
    let o = |v: &Option<String>| v.as_deref().map(cell).unwrap_or_default();
    let t = |v: Option<u64>| v.map(rfc3339).unwrap_or_default();
    [
        r.id.to_string(),
        o(&r.key),
        cell(&r.client),
        o(&r.model),
        o(&r.generation.as_ref().map(|g| g.to_string())),
        rfc3339(r.received),
        t(r.admitted),
        t(r.submitted),
        t(r.ended),
        r.status.as_ref().map(|s| cell(s.as_str())).unwrap_or_default(),
        r.output_ms.map(|ms| format!("{}.{:03}", ms / 1000, ms % 1000)).unwrap_or_default(),
        r.estimate.map(|e| e.cost.to_string()).unwrap_or_default(),
        source(r.estimate.map(|e| e.source)),
        r.settled.map(|s| s.to_string()).unwrap_or_default(),
        source(r.settled_from),
        r.waited_ms.to_string(),
        r.upstream_429s.to_string(),
    ]
    .join(",")
}

/// The page's body. `next`: the cursor of the next page, if there is one.
pub fn page(rows: &[LedgerRow], next: Option<u64>, format: Format) -> String {
    match format {
        Format::Json => {
            let rows: Vec<RowView> = rows.iter().map(view).collect();
            let next = next.map(|n| n.to_string());
            serde_json::json!({ "rows": rows, "nextCursor": next }).to_string()
        }
        Format::Ndjson => rows.iter().map(|r| serde_json::to_string(&view(r)).unwrap_or_default() + "\n").collect(),
        Format::Csv => {
            let mut out = String::from(CSV_HEADER);
            out.push_str("\r\n");
            for r in rows {
                out.push_str(&csv_line(r));
                out.push_str("\r\n");
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::Estimate;

    fn row() -> LedgerRow {
        let mut r = LedgerRow::new(7, "-evil,\"x\"", 1_795_856_248_123);
        r.model = Some("lipsync-2".into());
        r.estimate = Some(Estimate { cost: MicroUsd(400_000), source: CostSource::Sync });
        r.settled = Some(MicroUsd(480_000));
        r.settled_from = Some(CostSource::Prices);
        r.output_ms = Some(12_000);
        r
    }

    #[test]
    fn formats() {
        let j: serde_json::Value = serde_json::from_str(&page(&[row()], Some(7), Format::Json)).unwrap();
        assert_eq!(j["nextCursor"], "7");
        assert_eq!(j["rows"][0]["settledMicroUsd"], 480_000);
        assert_eq!(j["rows"][0]["estimateSource"], "sync");
        assert_eq!(j["rows"][0]["outputDuration"], 12.0);
        assert!(j["rows"][0].get("reservation").is_none());
        let nd = page(&[row(), row()], None, Format::Ndjson);
        assert_eq!(nd.lines().count(), 2);
        let csv = page(&[row()], None, Format::Csv);
        let line = csv.lines().nth(1).unwrap();
        assert!(line.starts_with("7,,\"'-evil,\"\"x\"\"\",lipsync-2,"), "{line}");
        assert!(line.contains(",0.400000,sync,0.480000,prices,0,0"), "{line}");
        assert_eq!(csv.lines().next().unwrap().split(',').count(), 17);
    }
}
