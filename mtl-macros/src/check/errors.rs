//! The error context of one expansion: every problem collected (not returned early) so that a
//! model with several mistakes reports them all in one compile, each on the token at fault.
//!
//! Like serde_derive's `Ctxt`, the context must be consumed with [`Errors::check`]: dropping
//! it with errors unread would lose them silently, so that is a bug and panics (in the macro,
//! at compile time, where a test sees it at once).

use proc_macro2::Span;

pub struct Errors {
    /// `None` once checked.
    errors: Option<Vec<syn::Error>>,
}

impl Default for Errors {
    fn default() -> Self {
        Errors {
            errors: Some(Vec::new()),
        }
    }
}

impl Errors {
    /// Records an error on `span`.
    pub fn at(&mut self, span: Span, msg: impl std::fmt::Display) {
        if let Some(e) = &mut self.errors {
            e.push(syn::Error::new(span, msg));
        }
    }

    /// Whether no error was recorded yet.
    pub fn is_empty(&self) -> bool {
        self.errors.as_ref().is_none_or(Vec::is_empty)
    }

    /// The errors recorded; consumes the context.
    pub fn check(mut self) -> Vec<syn::Error> {
        self.errors.take().unwrap_or_default()
    }
}

impl Drop for Errors {
    fn drop(&mut self) {
        if self.errors.is_some() && !std::thread::panicking() {
            panic!("mtl_model!: an error context was dropped without being checked");
        }
    }
}
