//! The portal's content: a few fixed articles and news items, and comments kept in memory.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Permission names, as the helpdesk's usergroups grant them.
pub(crate) mod permission {
    pub(crate) const KB_READ: &str = "kb.read";
    pub(crate) const KB_ADVANCED: &str = "kb.category.advanced";
    pub(crate) const NEWS_READ: &str = "news.read";
    pub(crate) const CHAT_SALES: &str = "chat.sales";
    pub(crate) const CHAT_SUPPORT: &str = "chat.support";
    pub(crate) const COMMENTS_UNMODERATED: &str = "comments.unmoderated";
}

/// A top-level part of the portal, shown to whoever holds its permission.
pub(crate) struct Section {
    pub(crate) permission: &'static str,
    pub(crate) path: &'static str,
    pub(crate) title: &'static str,
    pub(crate) summary: &'static str,
}

pub(crate) const SECTIONS: [Section; 4] = [
    Section {
        permission: permission::KB_READ,
        path: "/kb",
        title: "Knowledgebase",
        summary: "Answers to common questions.",
    },
    Section {
        permission: permission::NEWS_READ,
        path: "/news",
        title: "News",
        summary: "What changed in the service lately.",
    },
    Section {
        permission: permission::CHAT_SALES,
        path: "/chat/sales",
        title: "Chat with sales",
        summary: "Questions about plans and prices.",
    },
    Section {
        permission: permission::CHAT_SUPPORT,
        path: "/chat/support",
        title: "Chat with support",
        summary: "Priority help from the support team.",
    },
];

/// A knowledgebase category; only `Advanced` needs more than `kb.read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Category {
    GettingStarted,
    Account,
    Advanced,
}

impl Category {
    pub(crate) const ALL: [Self; 3] = [Self::GettingStarted, Self::Account, Self::Advanced];

    pub(crate) fn title(self) -> &'static str {
        match self {
            Self::GettingStarted => "Getting started",
            Self::Account => "Your account",
            Self::Advanced => "Advanced configuration",
        }
    }

    /// The permission needed beyond `kb.read`, if any.
    pub(crate) fn permission(self) -> Option<&'static str> {
        match self {
            Self::Advanced => Some(permission::KB_ADVANCED),
            Self::GettingStarted | Self::Account => None,
        }
    }
}

pub(crate) struct Article {
    pub(crate) id: &'static str,
    pub(crate) category: Category,
    pub(crate) title: &'static str,
    pub(crate) body: &'static str,
}

pub(crate) const ARTICLES: [Article; 5] = [
    Article {
        id: "first-ticket",
        category: Category::GettingStarted,
        title: "Opening your first ticket",
        body: "Describe what you expected and what happened instead. Attach a screenshot \
               when you can: it saves a round of questions.",
    },
    Article {
        id: "response-times",
        category: Category::GettingStarted,
        title: "How quickly we answer",
        body: "Tickets are answered within one working day. Chat is answered at once \
               during office hours.",
    },
    Article {
        id: "reset-password",
        category: Category::Account,
        title: "Resetting your password",
        body: "Use the \"forgot password\" link on the sign-in page. If your company signs \
               you in through its own directory, ask your administrator instead.",
    },
    Article {
        id: "single-sign-on",
        category: Category::Advanced,
        title: "Connecting your company's single sign-on",
        body: "Register the portal as an application in your identity provider, then map \
               the provider's groups to helpdesk usergroups.",
    },
    Article {
        id: "api-access",
        category: Category::Advanced,
        title: "Automating with the tickets API",
        body: "The tickets API answers JSON. Requests carry the same signed identity as \
               the portal's pages.",
    },
];

pub(crate) fn article(id: &str) -> Option<&'static Article> {
    ARTICLES.iter().find(|article| article.id == id)
}

pub(crate) struct NewsItem {
    pub(crate) date: &'static str,
    pub(crate) title: &'static str,
    pub(crate) body: &'static str,
}

pub(crate) const NEWS: [NewsItem; 3] = [
    NewsItem {
        date: "2025-03-03",
        title: "Support chat now open on Saturdays",
        body: "VIP support is now staffed from 9:00 to 13:00 on Saturdays.",
    },
    NewsItem {
        date: "2025-02-10",
        title: "New knowledgebase articles",
        body: "Power users will find new articles on single sign-on and the tickets API.",
    },
    NewsItem {
        date: "2025-01-20",
        title: "Trial extended to 30 days",
        body: "Trial users can now try every plan for 30 days. Ask sales for details.",
    },
];

/// One comment on an article.
#[derive(Debug, Clone)]
pub(crate) struct Comment {
    pub(crate) author: String,
    pub(crate) text: String,
    pub(crate) published: bool,
}

/// Comments by article id. In memory only: an example, not a database.
#[derive(Default)]
pub(crate) struct CommentStore {
    by_article: Mutex<HashMap<&'static str, Vec<Comment>>>,
}

impl CommentStore {
    pub(crate) fn add(&self, article: &'static str, comment: Comment) {
        self.lock().entry(article).or_default().push(comment);
    }

    /// The comments of `article` in the order they were posted.
    pub(crate) fn list(&self, article: &str) -> Vec<Comment> {
        self.lock().get(article).cloned().unwrap_or_default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<&'static str, Vec<Comment>>> {
        // Every change is a single push, so a panic elsewhere cannot leave a list half-written.
        self.by_article.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
