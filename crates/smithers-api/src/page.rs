//! One page of a list.

use serde::{Deserialize, Serialize};

/// One page of a list, in the list's order, and the cursor of the next
/// page: `{"items": [...], "next": "…" | null}`. A cursor is opaque: it is
/// given back as it was received, never built; `next` is `None` on the
/// last page. (Over HTTP the items are the body and the next page is a
/// `Link: <…>; rel="next"` header, RFC 8288, so a list has the shape the
/// command line prints.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}
