//! The portal's HTML pages: home, knowledgebase with comments, and news.

use std::fmt::Write as _;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{Html, Redirect};
use serde::Deserialize;

use crate::AppState;
use crate::content::{self, ARTICLES, Article, Category, Comment, NEWS, SECTIONS, permission};
use crate::error::PageError;
use crate::html::{escape, page};
use crate::identity::Person;

/// The longest comment accepted, in characters.
const MAX_COMMENT_CHARS: usize = 2000;

impl Person {
    fn may_read(&self, category: Category) -> bool {
        self.may(permission::KB_READ) && category.permission().is_none_or(|p| self.may(p))
    }
}

pub(crate) async fn home(person: Person) -> Html<String> {
    let mut body = String::new();
    let sections: Vec<_> = SECTIONS.iter().filter(|section| person.may(section.permission)).collect();
    if sections.is_empty() {
        body.push_str("<p>There is nothing here you may open yet.</p>\n");
    } else {
        body.push_str("<ul class=\"sections\">\n");
        for section in sections {
            let _ = writeln!(
                body,
                "<li><a href=\"{}\">{}</a> — {}</li>",
                section.path, section.title, section.summary
            );
        }
        body.push_str("</ul>\n");
    }
    page(&person, "Welcome to the helpdesk", &body)
}

pub(crate) async fn knowledgebase(person: Person) -> Result<Html<String>, PageError> {
    person.require(permission::KB_READ)?;
    let mut body = String::new();
    for category in Category::ALL {
        if !person.may_read(category) {
            continue;
        }
        let _ = writeln!(body, "<h2>{}</h2>", category.title());
        if category == Category::Advanced {
            body.push_str("<p><a href=\"/kb/advanced\">All advanced articles</a></p>\n");
        }
        body.push_str(&article_list(category));
    }
    Ok(page(&person, "Knowledgebase", &body))
}

pub(crate) async fn advanced(person: Person) -> Result<Html<String>, PageError> {
    person.require(permission::KB_READ)?;
    person.require(permission::KB_ADVANCED)?;
    let body = article_list(Category::Advanced);
    Ok(page(&person, Category::Advanced.title(), &body))
}

fn article_list(category: Category) -> String {
    let mut list = String::from("<ul>\n");
    for article in ARTICLES.iter().filter(|a| a.category == category) {
        let _ =
            writeln!(list, "<li><a href=\"/kb/articles/{}\">{}</a></li>", article.id, escape(article.title));
    }
    list.push_str("</ul>\n");
    list
}

/// Which notice to show after a comment was posted.
#[derive(Deserialize)]
pub(crate) struct ArticleQuery {
    posted: Option<String>,
}

pub(crate) async fn article(
    State(state): State<AppState>,
    person: Person,
    Path(id): Path<String>,
    Query(query): Query<ArticleQuery>,
) -> Result<Html<String>, PageError> {
    let article = readable_article(&person, &id)?;
    let comments = state.comments().list(article.id);

    let mut body = String::new();
    match query.posted.as_deref() {
        Some("published") => body.push_str("<p class=\"notice\">Your comment was published.</p>\n"),
        Some("pending") => {
            body.push_str("<p class=\"notice\">Thank you: your comment is awaiting moderation.</p>\n")
        }
        _ => {}
    }
    let _ = writeln!(
        body,
        "<p class=\"category\">{}</p>\n<p>{}</p>\n<h2>Comments</h2>",
        category_link(article.category),
        escape(article.body)
    );

    let published: Vec<&Comment> = comments.iter().filter(|c| c.published).collect();
    if published.is_empty() {
        body.push_str("<p>No comments yet.</p>\n");
    } else {
        body.push_str("<ul class=\"comments\">\n");
        for comment in published {
            let _ = writeln!(
                body,
                "<li><strong>{}</strong>: {}</li>",
                escape(&comment.author),
                escape(&comment.text)
            );
        }
        body.push_str("</ul>\n");
    }
    let pending = comments.iter().filter(|c| !c.published).count();
    if pending > 0 {
        let _ = writeln!(body, "<p class=\"pending\">{pending} comment(s) awaiting moderation.</p>");
    }

    if person.is_guest() {
        body.push_str("<p>Sign in to comment.</p>\n");
    } else {
        let _ = writeln!(
            body,
            "<form method=\"post\" action=\"/kb/articles/{}\">\
             <p><label for=\"text\">Add a comment</label><br>\
             <textarea id=\"text\" name=\"text\" rows=\"4\" maxlength=\"{MAX_COMMENT_CHARS}\" required></textarea></p>\
             <p><button type=\"submit\">Post comment</button></p></form>",
            article.id
        );
    }
    Ok(page(&person, article.title, &body))
}

fn category_link(category: Category) -> String {
    match category {
        Category::Advanced => format!("<a href=\"/kb/advanced\">{}</a>", category.title()),
        Category::GettingStarted | Category::Account => {
            format!("<a href=\"/kb\">{}</a>", category.title())
        }
    }
}

/// The article `id`, if it exists and the visitor may read its category. An article the
/// visitor may not read is refused with 403 like its category page, not hidden as a 404.
fn readable_article(person: &Person, id: &str) -> Result<&'static Article, PageError> {
    person.require(permission::KB_READ)?;
    let article = content::article(id).ok_or(PageError::NotFound)?;
    if let Some(needed) = article.category.permission() {
        person.require(needed)?;
    }
    Ok(article)
}

/// The comment form.
#[derive(Deserialize)]
pub(crate) struct CommentForm {
    text: String,
}

pub(crate) async fn post_comment(
    State(state): State<AppState>,
    person: Person,
    Path(id): Path<String>,
    Form(form): Form<CommentForm>,
) -> Result<Redirect, PageError> {
    let article = readable_article(&person, &id)?;
    let Some(user) = person.user() else {
        return Err(PageError::SignInRequired);
    };
    let text = form.text.trim();
    let length = text.chars().count();
    if length == 0 || length > MAX_COMMENT_CHARS {
        return Err(PageError::InvalidComment { max: MAX_COMMENT_CHARS });
    }
    // Power users' comments appear at once; everyone else's wait for a moderator.
    let published = person.may(permission::COMMENTS_UNMODERATED);
    let author = person.name().unwrap_or(user).to_owned();
    tracing::info!(account = %user, article = article.id, published, "Comment posted");
    state.comments().add(article.id, Comment { author, text: text.to_owned(), published });
    let outcome = if published { "published" } else { "pending" };
    Ok(Redirect::to(&format!("/kb/articles/{}?posted={outcome}", article.id)))
}

pub(crate) async fn news(person: Person) -> Result<Html<String>, PageError> {
    person.require(permission::NEWS_READ)?;
    let mut body = String::new();
    for item in &NEWS {
        let _ = writeln!(
            body,
            "<article><h2>{}</h2><p><time>{}</time></p><p>{}</p></article>",
            escape(item.title),
            item.date,
            escape(item.body)
        );
    }
    Ok(page(&person, "News", &body))
}

pub(crate) async fn not_found() -> PageError {
    PageError::NotFound
}
