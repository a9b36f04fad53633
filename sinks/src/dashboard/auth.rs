//! The token check (constant time) and the headers every answer carries.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::Dashboard;

/// Cookie that carries the token after a `?token=` visit.
pub const COOKIE: &str = "trackiq_token";

/// No script but this server's (`/assets/dashboard.js`), no inline script, no framing.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Whether `given` is `token`, in time independent of where they differ.
pub(super) fn equal(given: &str, token: &str) -> bool {
    given.as_bytes().ct_eq(token.as_bytes()).into()
}

/// The token a request carries, if any: bearer header, cookie, or `token` query parameter.
fn presented(req: &Request) -> (Option<String>, bool) {
    let h = req.headers();
    if let Some(t) = h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")) {
        return (Some(t.to_string()), false);
    }
    let cookie = h.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|c| c.trim().strip_prefix(&format!("{COOKIE}=")).map(str::to_string));
    if cookie.is_some() {
        return (cookie, false);
    }
    let query = req.uri().query().unwrap_or_default();
    let from_query = url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "token").map(|(_, v)| v.into_owned());
    let set_cookie = from_query.is_some();
    (from_query, set_cookie)
}

/// Whether a form post comes from this dashboard's own pages: the browser's `Sec-Fetch-Site`
/// must say same-origin (or, from a browser without fetch metadata, `Origin` must name this
/// host). A page elsewhere cannot make a
/// visitor's browser pin a baseline here (cross-site request forgery), token or not.
pub fn same_origin(headers: &axum::http::HeaderMap) -> bool {
    let get = |h: &str| headers.get(h).and_then(|v| v.to_str().ok());
    // Browsers say where a request comes from in Sec-Fetch-Site; with `Referrer-Policy:
    // no-referrer` their Origin on a form POST is "null", so the fetch metadata decides.
    if let Some(site) = get("sec-fetch-site") {
        return matches!(site, "same-origin" | "none");
    }
    match (get("origin"), get("host")) {
        (Some(origin), Some(host)) => origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")) == Some(host),
        (Some(_), None) => false,
        // Neither header: not a browser (curl, a script), which a forged form cannot be.
        (None, _) => true,
    }
}

/// Refuses requests without the token (when one is set) and adds the security headers.
pub async fn guard(State(d): State<Arc<Dashboard>>, req: Request, next: Next) -> Response {
    let mut set_cookie = None;
    if let Some(token) = &d.token {
        let (given, from_query) = presented(&req);
        if !given.as_deref().is_some_and(|g| equal(g, token.expose())) {
            return (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")], "a token is needed: `Authorization: Bearer <token>`, or open the page once with ?token=<token>\n").into_response();
        }
        if from_query {
            set_cookie = HeaderValue::from_str(&format!("{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/", token.expose())).ok();
        }
    }
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if let Some(c) = set_cookie {
        h.insert(header::SET_COOKIE, c);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> axum::http::HeaderMap {
        pairs.iter().map(|(k, v)| (header::HeaderName::from_static(k), HeaderValue::from_str(v).unwrap())).collect()
    }

    #[test]
    fn a_form_post_is_accepted_only_from_this_dashboards_pages() {
        // Chromium's form post under `Referrer-Policy: no-referrer`: Origin "null", fetch metadata same-origin.
        assert!(same_origin(&headers(&[("origin", "null"), ("host", "127.0.0.1:8080"), ("sec-fetch-site", "same-origin")])));
        assert!(!same_origin(&headers(&[("origin", "http://evil.example"), ("host", "127.0.0.1:8080"), ("sec-fetch-site", "cross-site")])));
        assert!(!same_origin(&headers(&[("origin", "http://127.0.0.1:8080"), ("host", "127.0.0.1:8080"), ("sec-fetch-site", "same-site")])));
        // A browser without fetch metadata: the Origin must name this host.
        assert!(same_origin(&headers(&[("origin", "http://127.0.0.1:8080"), ("host", "127.0.0.1:8080")])));
        assert!(!same_origin(&headers(&[("origin", "http://evil.example"), ("host", "127.0.0.1:8080")])));
        assert!(!same_origin(&headers(&[("origin", "null"), ("host", "127.0.0.1:8080")])));
        // Not a browser at all (curl): no cross-site forgery is possible.
        assert!(same_origin(&headers(&[("host", "127.0.0.1:8080")])));
    }

    #[test]
    fn tokens_compare_in_constant_time_and_exactly() {
        assert!(equal("ui-token-7f3a9c", "ui-token-7f3a9c"));
        assert!(!equal("ui-token-7f3a9d", "ui-token-7f3a9c"));
        assert!(!equal("ui-token-7f3a9", "ui-token-7f3a9c"));
    }
}
