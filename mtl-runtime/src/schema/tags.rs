//! Merlin's column tags and the normalised [`TagSet`].
//!
//! Tags are what Merlin infers models from: CATEGORICAL columns become embeddings, TARGET columns
//! become tasks, USER/ITEM/ID drive the synthetic generator. Normalisation follows merlin-core:
//! strings map case-insensitively onto the known tags (anything else stays a custom tag), the
//! deprecated compound tags `user_id`, `item_id`, `session_id` and `text_tokenized` expand into
//! their atoms, and contradictory pairs (CATEGORICAL with CONTINUOUS, ...) are rejected.
//! `binary_classification` and `multi_class_classification` are *not* expanded, as in current
//! merlin-core, which is why Merlin's tenrec targets carry both `binary_classification` and `binary`.

use std::collections::BTreeSet;
use std::fmt;

/// One column tag. The string form is what schema files store.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tag {
    // feature type
    Categorical,
    Continuous,
    List,
    Sequence,
    Text,
    Tokenized,
    Time,
    Embedding,
    // context
    Id,
    User,
    Item,
    Session,
    Context,
    // target
    Target,
    Regression,
    Classification,
    Binary,
    MultiClass,
    // deprecated compounds (the first four expand into atoms inside a TagSet)
    UserId,
    ItemId,
    SessionId,
    TextTokenized,
    BinaryClassification,
    MultiClassClassification,
    /// Any other string, kept verbatim (Merlin allows free-form tags such as "bias").
    Custom(String),
}

const KNOWN: [(Tag, &str); 24] = [
    (Tag::Categorical, "categorical"),
    (Tag::Continuous, "continuous"),
    (Tag::List, "list"),
    (Tag::Sequence, "sequence"),
    (Tag::Text, "text"),
    (Tag::Tokenized, "tokenized"),
    (Tag::Time, "time"),
    (Tag::Embedding, "embedding"),
    (Tag::Id, "id"),
    (Tag::User, "user"),
    (Tag::Item, "item"),
    (Tag::Session, "session"),
    (Tag::Context, "context"),
    (Tag::Target, "target"),
    (Tag::Regression, "regression"),
    (Tag::Classification, "classification"),
    (Tag::Binary, "binary"),
    (Tag::MultiClass, "multi_class"),
    (Tag::UserId, "user_id"),
    (Tag::ItemId, "item_id"),
    (Tag::SessionId, "session_id"),
    (Tag::TextTokenized, "text_tokenized"),
    (Tag::BinaryClassification, "binary_classification"),
    (Tag::MultiClassClassification, "multi_class_classification"),
];

impl Tag {
    /// Parses a tag the way merlin-core does: a case-insensitive match on a known tag's value,
    /// otherwise a custom tag holding the string as given.
    pub fn parse(s: &str) -> Tag {
        let lower = s.to_ascii_lowercase();
        KNOWN
            .iter()
            .find(|(_, v)| *v == lower)
            .map(|(t, _)| t.clone())
            .unwrap_or_else(|| Tag::Custom(s.to_string()))
    }

    /// The string stored in schema files.
    pub fn as_str(&self) -> &str {
        match self {
            Tag::Custom(s) => s,
            known => KNOWN
                .iter()
                .find(|(t, _)| t == known)
                .map(|(_, v)| *v)
                .unwrap_or(""),
        }
    }

    /// The atoms a compound tag stands for; a non-compound tag stands for itself.
    pub fn atoms(&self) -> Vec<Tag> {
        match self {
            Tag::UserId => vec![Tag::User, Tag::Id],
            Tag::ItemId => vec![Tag::Item, Tag::Id],
            Tag::SessionId => vec![Tag::Session, Tag::Id],
            Tag::TextTokenized => vec![Tag::Text, Tag::Tokenized],
            other => vec![other.clone()],
        }
    }

    /// Tags that may not sit on the same column as this one.
    fn collides_with(&self) -> &'static [Tag] {
        match self {
            Tag::Categorical => &[Tag::Continuous, Tag::Embedding],
            Tag::Continuous => &[Tag::Categorical, Tag::Embedding, Tag::Id],
            Tag::Embedding => &[Tag::Continuous, Tag::Categorical, Tag::Id],
            Tag::Id => &[Tag::Continuous, Tag::Embedding],
            _ => &[],
        }
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for Tag {
    fn from(s: &str) -> Tag {
        Tag::parse(s)
    }
}

/// Two tags that cannot describe the same column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagCollision(pub Tag, pub Tag);

impl fmt::Display for TagCollision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "tags `{}` and `{}` cannot both be set on one column (Merlin rejects this pair)",
            self.0, self.1
        )
    }
}

impl std::error::Error for TagCollision {}

/// A normalised set of tags: compounds expanded, no colliding pair. Compares as a set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagSet(BTreeSet<Tag>);

impl TagSet {
    /// The empty set.
    pub fn empty() -> TagSet {
        TagSet::default()
    }

    /// Normalises `tags` and rejects colliding pairs.
    pub fn new<I, T>(tags: I) -> Result<TagSet, TagCollision>
    where
        I: IntoIterator<Item = T>,
        T: Into<Tag>,
    {
        let mut set = BTreeSet::new();
        for tag in tags {
            set.extend(tag.into().atoms());
        }
        for tag in &set {
            if let Some(other) = tag.collides_with().iter().find(|o| set.contains(*o)) {
                // Report each pair in a stable order.
                let (a, b) = if tag < other {
                    (tag, other)
                } else {
                    (other, tag)
                };
                return Err(TagCollision(a.clone(), b.clone()));
            }
        }
        Ok(TagSet(set))
    }

    /// Merlin's `override`: adds `new`, dropping old tags that collide with any of them.
    pub fn overridden_by(&self, new: &TagSet) -> TagSet {
        let mut set: BTreeSet<Tag> = self
            .0
            .iter()
            .filter(|old| !new.0.iter().any(|n| n.collides_with().contains(old)))
            .cloned()
            .collect();
        set.extend(new.0.iter().cloned());
        TagSet(set)
    }

    /// Whether the (atomic) tag is present. A compound tag asks for all its atoms.
    pub fn contains(&self, tag: &Tag) -> bool {
        tag.atoms().iter().all(|a| self.0.contains(a))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Tag> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for TagSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.0.iter().map(Tag::as_str).collect();
        write!(f, "{{{}}}", names.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_map_case_insensitively_and_unknown_ones_stay_custom() {
        assert_eq!(Tag::parse("CATEGORICAL"), Tag::Categorical);
        assert_eq!(Tag::parse("bias"), Tag::Custom("bias".into()));
        for (tag, s) in KNOWN.iter() {
            assert_eq!(&Tag::parse(s), tag);
            assert_eq!(tag.as_str(), *s);
        }
    }

    #[test]
    fn compounds_expand_except_the_classification_ones() {
        let set = TagSet::new(["user_id", "categorical"]).unwrap();
        assert_eq!(
            set,
            TagSet::new([Tag::User, Tag::Id, Tag::Categorical]).unwrap()
        );
        assert!(set.contains(&Tag::UserId));
        let target = TagSet::new(["binary_classification", "target"]).unwrap();
        assert!(target.contains(&Tag::BinaryClassification));
        assert!(!target.contains(&Tag::Binary));
    }

    #[test]
    fn colliding_pairs_are_rejected_and_override_drops_them() {
        let err = TagSet::new(["categorical", "continuous"]).unwrap_err();
        assert_eq!(err, TagCollision(Tag::Categorical, Tag::Continuous));
        assert!(TagSet::new(["continuous", "id"]).is_err());
        assert!(TagSet::new(["embedding", "id"]).is_err());
        let old = TagSet::new(["categorical", "user"]).unwrap();
        let new = TagSet::new(["continuous"]).unwrap();
        assert_eq!(
            old.overridden_by(&new),
            TagSet::new(["continuous", "user"]).unwrap()
        );
    }
}
