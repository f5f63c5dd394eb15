//! HTML for deskgate's own pages: one layout, escaping in one place.

use axum::response::{Html, IntoResponse, Response};
use http::StatusCode;

/// Escapes text for HTML element content and quoted attributes.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes text for a URL query value.
pub fn query_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#f4f5f7;color:#1d2330;margin:0}\
main{max-width:26rem;margin:4rem auto;background:#fff;padding:2rem 2.25rem;border-radius:10px;\
box-shadow:0 1px 4px #0002}h1{font-size:1.4rem;margin:0 0 1.25rem}label{display:block;margin:.9rem 0 .3rem;\
font-weight:600}input{width:100%;box-sizing:border-box;padding:.55rem;border:1px solid #b8bfcc;border-radius:6px;\
font-size:1rem}button{margin-top:1.3rem;width:100%;padding:.65rem;border:0;border-radius:6px;background:#2457c5;\
color:#fff;font-size:1rem;cursor:pointer}.alert{background:#fdecea;border:1px solid #f3b7b1;padding:.7rem;\
border-radius:6px;margin-bottom:1rem}.note{background:#eef4ff;border:1px solid #c4d6fb;padding:.7rem;\
border-radius:6px;margin-bottom:1rem}.muted{color:#5b6475;font-size:.9rem}code{background:#f0f1f4;padding:0 .25rem}\
fieldset{border:1px solid #d5dae3;border-radius:6px;margin:0 0 .5rem;padding:.5rem .8rem}\
legend{font-weight:600;padding:0 .3rem}label.choice{font-weight:400;margin:.3rem 0}\
label.choice input{width:auto;margin-right:.4rem}\
a.button{display:block;text-align:center;margin-top:.6rem;padding:.6rem;border:1px solid #2457c5;\
border-radius:6px;color:#2457c5;text-decoration:none}p.or{text-align:center;color:#5b6475;margin:1rem 0 0}\
h2{font-size:1.1rem;margin:1.6rem 0 .4rem}nav.sections ul{list-style:none;padding:0;margin:0 0 1rem;display:flex;\
flex-wrap:wrap;gap:.4rem 1rem}table.sessions{width:100%;border-collapse:collapse}table.sessions td{vertical-align:top;\
padding:.5rem 0;border-top:1px solid #e3e6ec}table.sessions button{margin:0;width:auto;padding:.35rem .7rem}";

/// A whole page with a title and body HTML (already escaped).
pub fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{t} · deskgate</title><style>{STYLE}</style></head>\
         <body><main><h1>{t}</h1>{body}</main></body></html>\n",
        t = esc(title)
    );
    let mut resp = (status, Html(html)).into_response();
    resp.headers_mut().insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
    resp.headers_mut().insert("x-frame-options", http::HeaderValue::from_static("DENY"));
    resp
}

/// A page with one message paragraph and a link onward.
pub fn message(status: StatusCode, title: &str, text: &str, link: Option<(&str, &str)>) -> Response {
    let link = link.map_or(String::new(), |(href, label)| {
        format!("<p><a href=\"{}\">{}</a></p>", esc(href), esc(label))
    });
    page(status, title, &format!("<p>{}</p>{link}", esc(text)))
}

/// A Unix time as `YYYY-MM-DD HH:MM UTC`.
pub fn utc(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rest = secs % 86_400;
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02} UTC", rest / 3600, rest % 3600 / 60)
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_are_shown_as_utc_dates() {
        assert_eq!(super::utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(super::utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(super::utc(1_796_515_140), "2026-12-05 23:59 UTC");
    }
}
