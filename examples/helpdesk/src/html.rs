//! The page layout every HTML page shares: who is signed in, what they may open, any warning.

use std::fmt::Write as _;

use axum::response::Html;

use crate::content::SECTIONS;
use crate::identity::Person;

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;\
padding:0 1rem;line-height:1.5;color:#222}header{border-bottom:1px solid #ccc;margin-bottom:1rem}\
nav a{margin-right:1rem}.who{color:#555}.warning{background:#fff3cd;border:1px solid #e0b000;\
padding:.5rem 1rem}.notice{background:#e7f5e7;border:1px solid #7a7;padding:.5rem 1rem}\
.pending{color:#777;font-style:italic}textarea{width:100%}";

/// Escapes text for use in HTML content and in double-quoted attributes.
pub(crate) fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// A full page: `body` is HTML already escaped by the caller; `title` is plain text.
pub(crate) fn page(person: &Person, title: &str, body: &str) -> Html<String> {
    let mut nav = String::from("<a href=\"/\">Home</a>");
    for section in SECTIONS.iter().filter(|s| person.may(s.permission)) {
        let _ = write!(nav, "<a href=\"{}\">{}</a>", section.path, section.title);
    }
    let warning = person.warning.as_deref().map_or(String::new(), |warning| {
        format!(
            "<p class=\"warning\" role=\"alert\">Warning: {}. You are browsing as a guest.</p>",
            escape(warning)
        )
    });
    Html(format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>{title} — Helpdesk</title><style>{STYLE}</style></head>\n<body>\
         <header><p><strong>Helpdesk</strong></p><p class=\"who\">{who}</p><nav>{nav}</nav></header>\n\
         {warning}<main><h1>{title}</h1>\n{body}</main></body></html>\n",
        title = escape(title),
        who = who(person),
    ))
}

/// "Signed in as NAME (EMAIL) — usergroups: …", or "Guest".
fn who(person: &Person) -> String {
    let groups = if person.usergroups.is_empty() {
        String::new()
    } else {
        format!(" — usergroups: {}", escape(&person.usergroups.join(", ")))
    };
    let Some(user) = person.user() else {
        return format!("Guest{groups}");
    };
    let name = escape(person.name().unwrap_or(user));
    match person.email() {
        Some(email) if person.email_verified() == Some(false) => {
            format!("Signed in as {name} ({}, not verified){groups}", escape(email))
        }
        Some(email) => format!("Signed in as {name} ({}){groups}", escape(email)),
        None => format!("Signed in as {name}{groups}"),
    }
}

/// A short page without the layout, for refusals.
pub(crate) fn short_page(title: &str, message: &str) -> Html<String> {
    Html(format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{title} — Helpdesk</title><style>{STYLE}</style></head>\n<body>\
         <h1>{title}</h1><p>{message}</p><p><a href=\"/\">Back to the helpdesk</a></p>\
         </body></html>\n",
        title = escape(title),
        message = escape(message),
    ))
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(escape("<a href=\"x\">'&'</a>"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
    }
}
