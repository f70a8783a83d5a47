//! Topic names, interned for the life of the process.
//!
//! A record carries its topic; with a reference-counted name every record
//! would bump one shared counter on the fetching thread and drop it on the
//! handling thread, a cache line bouncing between cores a million times a
//! second. An interned `&'static str` is copied instead. The cost is one
//! small allocation per distinct topic name, kept until the process exits.

use std::collections::HashSet;
use std::fmt;
use std::ops::Deref;
use std::sync::{Mutex, OnceLock};

/// A topic name: `Copy`, compares and hashes as the string.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Topic(&'static str);

static INTERNED: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();

impl Topic {
    /// The interned topic called `name`.
    pub fn intern(name: &str) -> Topic {
        let mut set = INTERNED
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(s) = set.get(name) {
            return Topic(s);
        }
        let s: &'static str = Box::leak(name.to_string().into_boxed_str());
        set.insert(s);
        Topic(s)
    }

    /// The name.
    pub fn as_str(&self) -> &'static str {
        self.0
    }
}

impl Deref for Topic {
    type Target = str;
    fn deref(&self) -> &str {
        self.0
    }
}

impl AsRef<str> for Topic {
    fn as_ref(&self) -> &str {
        self.0
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl fmt::Debug for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0, f)
    }
}

impl From<&str> for Topic {
    fn from(s: &str) -> Self {
        Topic::intern(s)
    }
}

impl From<String> for Topic {
    fn from(s: String) -> Self {
        Topic::intern(&s)
    }
}

impl From<&String> for Topic {
    fn from(s: &String) -> Self {
        Topic::intern(s)
    }
}

impl PartialEq<str> for Topic {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Topic {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for Topic {
    fn eq(&self, other: &String) -> bool {
        self.0 == other.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_returns_the_same_name() {
        let a = Topic::intern("orders");
        let b = Topic::from(String::from("orders"));
        assert_eq!(a, b);
        assert!(std::ptr::eq(a.as_str(), b.as_str()));
        assert_eq!(a, "orders");
        assert_eq!(&*a, "orders");
        assert_eq!(format!("{a} {a:?}"), "orders \"orders\"");
        assert_ne!(a, Topic::intern("payments"));
    }
}
