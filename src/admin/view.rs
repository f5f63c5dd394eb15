//! The administration pages' layout: wider than the sign-in pages, with tables and a
//! navigation bar; escaping is `html::esc`, as everywhere.

use axum::response::{Html, IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

use crate::explain::{self, Explanation, PROVIDER_NOTE};
use crate::html::esc;
use crate::web::PREFIX;

const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#f4f5f7;color:#1d2330;margin:0}\
header{background:#1d2330;padding:.7rem 1.5rem}header a{color:#fff;margin-right:1.2rem;text-decoration:none}\
header a:focus,header a:hover{text-decoration:underline}\
main{max-width:64rem;margin:1.5rem auto;background:#fff;padding:1.5rem 2rem;border-radius:10px;box-shadow:0 1px 4px #0002}\
h1{font-size:1.4rem;margin:0 0 1rem}h2{font-size:1.1rem;margin:1.6rem 0 .6rem}\
table{border-collapse:collapse;width:100%;margin:.5rem 0}caption{text-align:left;color:#5b6475;padding:.3rem 0}\
th,td{text-align:left;padding:.45rem .5rem;border-bottom:1px solid #e3e6ec;vertical-align:top}\
label{font-weight:600;margin-right:.4rem}input[type=text],input[type=email],input[type=password],input[type=search],textarea{padding:.45rem;\
border:1px solid #b8bfcc;border-radius:6px;font-size:1rem;min-width:16rem}\
.field{margin:.8rem 0}.field label{display:block;margin-bottom:.3rem}\
fieldset{border:1px solid #d5dae3;border-radius:6px;margin:.6rem 0;padding:.5rem .9rem}legend{font-weight:600;padding:0 .3rem}\
label.choice{display:block;font-weight:400;margin:.35rem 0}\
button,a.button{display:inline-block;padding:.5rem 1rem;border:1px solid #2457c5;border-radius:6px;background:#2457c5;\
color:#fff;font-size:1rem;cursor:pointer;text-decoration:none;margin:.4rem .4rem .4rem 0}\
button.secondary,a.button.secondary{background:#fff;color:#2457c5}button.danger{background:#b42318;border-color:#b42318}\
.alert{background:#fdecea;border:1px solid #f3b7b1;padding:.7rem;border-radius:6px;margin-bottom:1rem}\
.note{background:#eef4ff;border:1px solid #c4d6fb;padding:.7rem;border-radius:6px;margin-bottom:1rem}\
.muted{color:#5b6475;font-size:.9rem}code{background:#f0f1f4;padding:0 .25rem}\
nav.filter ul{list-style:none;padding:0;margin:.4rem 0;display:flex;flex-wrap:wrap;gap:.4rem}\
nav.filter a{display:inline-block;padding:.25rem .7rem;border:1px solid #c4d6fb;border-radius:999px;text-decoration:none;color:#2457c5}\
nav.filter a[aria-current]{background:#2457c5;color:#fff}.badge{font-size:.8rem;padding:.05rem .45rem;border-radius:4px;\
background:#fdecea;color:#b42318}";

/// An administration page.
pub fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{t} · deskgate administration</title><style>{STYLE}</style></head>\
         <body><header><nav aria-label=\"Administration\"><a href=\"{PREFIX}/admin/people\">People</a>\
         <a href=\"{PREFIX}/admin/people/new\">Create an account</a><a href=\"{PREFIX}/admin/organizations\">Organizations</a><a href=\"{PREFIX}/admin/signups\">Pending sign-ups</a><a href=\"{PREFIX}/admin/mfa\">Second factors</a><a href=\"{PREFIX}/\">Your session</a>\
         <a href=\"/\">Leave administration</a></nav></header>\
         <main><h1>{t}</h1>{body}</main></body></html>\n",
        t = esc(title)
    );
    let mut resp = (status, Html(html)).into_response();
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    resp
}

/// An alert box, announced to screen readers.
pub fn alert(text: &str) -> String {
    format!("<div class=\"alert\" role=\"alert\">{}</div>", esc(text))
}

/// A status note, announced politely.
pub fn note(text: &str) -> String {
    format!("<div class=\"note\" role=\"status\">{}</div>", esc(text))
}

/// The explanation's usergroups, permissions and path check as HTML.
pub fn explanation(e: &Explanation) -> String {
    let rows: String = e
        .usergroups
        .iter()
        .map(|g| {
            let from: Vec<String> = g.sources.iter().map(|s| esc(&explain::source_text(s))).collect();
            format!(
                "<tr><th scope=\"row\">{} <span class=\"muted\">({})</span></th><td>{}</td></tr>",
                esc(&g.name),
                esc(&g.id),
                from.join("; ")
            )
        })
        .collect();
    let withheld: String = e
        .withheld
        .iter()
        .map(|w| format!("<tr><td colspan=\"2\" class=\"withheld\">{}</td></tr>", esc(&w.text())))
        .collect();
    let rows = format!("{rows}{withheld}");
    let mut out = format!(
        "<table id=\"usergroups\"><caption>Usergroups, and where each comes from</caption>\
         <thead><tr><th scope=\"col\">Usergroup</th><th scope=\"col\">Comes from</th></tr></thead>\
         <tbody>{rows}</tbody></table><p class=\"muted\">{}</p>\
         <p><strong>Permissions:</strong> {}</p>",
        esc(PROVIDER_NOTE),
        e.permissions.iter().map(|p| format!("<code>{}</code>", esc(p))).collect::<Vec<_>>().join(" ")
    );
    out.push_str(&said(e));
    if let Some(check) = &e.path {
        let rule = match (&check.rule, &check.decision) {
            (Some((pattern, Some(permission))), _) => {
                format!("<code>{}</code> requires <code>{}</code>", esc(pattern), esc(permission))
            }
            (Some((pattern, None)), _) => format!("<code>{}</code> is public", esc(pattern)),
            (None, Some(_)) => "none covers this path".into(),
            (None, None) => "—".into(),
        };
        let (code, why) = explain::decision_text(check);
        out.push_str(&format!(
            "<table id=\"decision\"><caption>Access to <code>{} {}</code></caption><tbody>\
             <tr><th scope=\"row\">Rule</th><td>{rule}</td></tr>\
             <tr><th scope=\"row\">Decision</th><td><strong>{}</strong> {}</td></tr></tbody></table>",
            esc(&check.method),
            esc(&check.asked),
            esc(code),
            esc(&why)
        ));
    }
    out
}

/// What each provider said at the person's last sign-in through it: the attributes used and
/// every group, mapped or not (and why not).
fn said(e: &Explanation) -> String {
    let mut out = String::new();
    for said in &e.said {
        let rows: String = said
            .groups
            .iter()
            .map(|g| {
                let outcome = match &g.why_not {
                    None => format!(
                        "<span class=\"mapped\">mapped</span> to {}",
                        g.usergroups
                            .iter()
                            .map(|u| format!("<code>{}</code>", esc(u)))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    Some(why) => format!("<span class=\"badge unmapped\">not mapped</span> {}", esc(why)),
                };
                format!("<tr><td><code>{}</code></td><td>{outcome}</td></tr>", esc(&g.group))
            })
            .collect();
        let rows =
            if rows.is_empty() { "<tr><td colspan=\"2\">No groups</td></tr>".to_owned() } else { rows };
        let organizations = said.organizations.iter().map(|o| format!("organization: {o}"));
        let attributes: String = said
            .attributes
            .iter()
            .cloned()
            .chain(organizations)
            .map(|a| format!("<li><code>{}</code></li>", esc(&a)))
            .collect();
        out.push_str(&format!(
            "<table class=\"said\" data-provider=\"{p}\"><caption>What <code>{p}</code> said at the last sign-in through it</caption>\
             <thead><tr><th scope=\"col\">Group</th><th scope=\"col\">Mapping</th></tr></thead><tbody>{rows}</tbody></table>\
             <ul class=\"attributes muted\">{attributes}</ul>",
            p = esc(&said.provider)
        ));
    }
    out
}

/// A checkbox per assignable usergroup of `model` (name `usergroup`), ticked when in
/// `ticked`, each followed by what `note` says of it (escaped HTML, or empty).
pub fn usergroup_boxes(
    model: &crate::usergroups::Model,
    ticked: &[String],
    note: impl Fn(&crate::usergroups::Usergroup) -> String,
) -> String {
    super::assignable(model)
        .map(|g| {
            let checked = if ticked.contains(&g.id) { " checked" } else { "" };
            format!(
                "<label class=\"choice\"><input type=\"checkbox\" name=\"usergroup\" value=\"{}\"{checked}> {} \
                 <span class=\"muted\">({})</span>{}</label>",
                esc(&g.id),
                esc(&g.name),
                esc(&g.id),
                note(g)
            )
        })
        .collect()
}
