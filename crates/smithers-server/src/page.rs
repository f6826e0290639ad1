//! Server-rendered HTML: the layout every page shares and the headers
//! every response carries. Pages are built with maud, whose `html!`
//! escapes every value it is given, so whatever a run, a step or an agent
//! printed is text on the page, never markup. Nothing is loaded from
//! elsewhere: the strict Content-Security-Policy below allows only this
//! server's own stylesheet and script, and no inline script at all.

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

/// The Content-Security-Policy of every response: nothing but this
/// origin's own files, no inline script or style, no plugin, no framing,
/// forms posted only here.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

/// A page: `title` and `body` in the shared layout.
pub fn layout(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — Smithers" }
                link rel="stylesheet" href="/static/smithers.css";
                script src="/static/smithers.js" defer {}
            }
            body {
                main { (body) }
            }
        }
    }
}

/// A page that only says something: `title`, then `text`.
pub fn message(status: StatusCode, title: &str, text: &str) -> Response {
    let page = layout(
        title,
        html! {
            h1 { (title) }
            p { (text) }
            p { a href="/" { "Back to the dashboard" } }
        },
    );
    (status, page).into_response()
}

/// Adds the headers every response carries: the policy above, no MIME
/// sniffing, no referrer (a sign-in link's token must not travel), no
/// caching of what a signed-in person saw.
pub async fn secure_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let set = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
    ];
    for (name, value) in set {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
