//! The DSL grammar: tokens → a syntax tree that keeps every span.
//!
//! ```text
//! input   := (section ","?)* (model ","?)+     sections before the models are shared by all
//! model   := attr* vis "struct" Ident "{" (section ","?)* "}"
//! section := Ident ":" value    (schema, inputs, exclude, body, towers, tasks, loss_balancing)
//! value   := LitStr | LitInt | LitFloat | "-" number | "(" value,* ")" | "[" value,* "]"
//!          | "{" (Ident ":" value ","?)* ".."? "}" | call | type
//! call    := Ident ("[" value,* "]")? ("(" arg,* ")")?      e.g. mlp[32, 16](dropout = 0.1)
//! arg     := Ident "=" value | Ident | value                 (keyed, flag, positional)
//! ```
//! The grammar is deliberately generic: which sections, kinds and options exist is decided in
//! `model`/`check`, so every such mistake becomes a spanned, explained error instead of a parse
//! failure.

use proc_macro2::{Span, TokenStream};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{
    braced, bracketed, parenthesized, Attribute, Ident, LitBool, LitFloat, LitInt, LitStr, Token,
    Visibility,
};

/// Everything inside `mtl_model! { .. }`: sections shared by every model, then the models.
pub struct Invocation {
    pub shared: Vec<Entry>,
    pub models: Vec<ModelDef>,
}

pub struct ModelDef {
    pub attrs: Vec<Attribute>,
    pub vis: Visibility,
    pub name: Ident,
    pub sections: Vec<Entry>,
}

/// `key: value` inside `{ }` (sections, inputs, tasks).
pub struct Entry {
    pub key: Ident,
    pub value: Value,
}

pub enum Value {
    Str(LitStr),
    Bool(LitBool),
    Int {
        lit: LitInt,
        negative: bool,
        span: Span,
    },
    Float {
        lit: LitFloat,
        negative: bool,
        span: Span,
    },
    Tuple {
        items: Vec<Value>,
        span: Span,
    },
    List {
        items: Vec<Value>,
        span: Span,
    },
    Map {
        entries: Vec<Entry>,
        /// `..` among the entries: "and every other one the schema has" (inputs, tasks).
        rest: Option<Span>,
        span: Span,
    },
    Call(Call),
    Type(syn::Type),
}

pub struct Call {
    pub name: Ident,
    /// `[..]` after the name, e.g. the widths of `mlp[32, 16]`.
    pub brackets: Option<(Span, Vec<Value>)>,
    /// `(..)` after the name.
    pub args: Option<(Span, Vec<Arg>)>,
}

pub enum Arg {
    Keyed { key: Ident, value: Value },
    Flag(Ident),
    Positional(Value),
}

impl ModelDef {
    /// The task names of an explicit `tasks` block, the model's own or else a shared one (for
    /// the fallback's outputs struct), in name order, each once.
    pub fn task_names(&self, shared: &[&Entry]) -> Vec<Ident> {
        let own = self.sections.iter().any(|e| e.key == "tasks");
        let mut names: Vec<Ident> = self
            .sections
            .iter()
            .chain(shared.iter().copied().filter(|_| !own))
            .filter(|e| e.key == "tasks")
            .filter_map(|e| match &e.value {
                Value::Map { entries, .. } => Some(entries.iter().map(|t| t.key.clone())),
                _ => None,
            })
            .flatten()
            // A name that cannot be a field (`self`, ...) was reported; it gets no field.
            .filter(|n| crate::codegen::is_field_name(&syn::ext::IdentExt::unraw(n).to_string()))
            .collect();
        names.sort_by_key(|n| n.to_string());
        names.dedup_by_key(|n| n.to_string());
        names
    }
}

impl Value {
    pub fn span(&self) -> Span {
        match self {
            Value::Str(s) => s.span(),
            Value::Bool(b) => b.span,
            Value::Int { span, .. } | Value::Float { span, .. } => *span,
            Value::Tuple { span, .. } | Value::List { span, .. } | Value::Map { span, .. } => *span,
            Value::Call(c) => c.name.span(),
            Value::Type(t) => t.span(),
        }
    }

    /// A bare identifier (`relu`, `click`, `true`).
    pub fn as_ident(&self) -> Option<&Ident> {
        match self {
            Value::Call(Call {
                name,
                brackets: None,
                args: None,
            }) => Some(name),
            Value::Type(syn::Type::Path(p)) if p.qself.is_none() => p.path.get_ident(),
            _ => None,
        }
    }

    /// A number (integer or float) as f64.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int { lit, negative, .. } => {
                lit.base10_parse::<f64>()
                    .ok()
                    .map(|v| if *negative { -v } else { v })
            }
            Value::Float { lit, negative, .. } => {
                lit.base10_parse::<f64>()
                    .ok()
                    .map(|v| if *negative { -v } else { v })
            }
            _ => None,
        }
    }

    pub fn describe(&self) -> &'static str {
        match self {
            Value::Str(_) => "a string",
            Value::Bool(_) => "a boolean",
            Value::Int { .. } => "an integer",
            Value::Float { .. } => "a number",
            Value::Tuple { .. } => "a tuple",
            Value::List { .. } => "a list",
            Value::Map { .. } => "a `{ .. }` block",
            Value::Call(_) | Value::Type(_) => "a name",
        }
    }
}

impl Parse for Invocation {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut shared = Vec::new();
        let mut models: Vec<ModelDef> = Vec::new();
        while !input.is_empty() {
            if starts_model(input) {
                models.push(input.parse()?);
                if input.peek(Token![,]) {
                    input.parse::<Token![,]>()?;
                }
                continue;
            }
            if input.peek(Token![..]) {
                return Err(input.error(
                    "`..` belongs in `inputs: { .., }` or `tasks: { .., }` (every other schema input or target)",
                ));
            }
            let entry = parse_entry(input)?;
            if !models.is_empty() {
                return Err(syn::Error::new(
                    entry.key.span(),
                    format!(
                        "section `{}` comes after a model: sections shared by every model come before the first one; move it up, or into a model's braces",
                        entry.key
                    ),
                ));
            }
            shared.push(entry);
            if !input.is_empty() && !starts_model(input) {
                input
                    .parse::<Token![,]>()
                    .map_err(|e| syn::Error::new(e.span(), "expected `,` between entries"))?;
            } else if input.peek(Token![,]) {
                input.parse::<Token![,]>()?;
            }
        }
        if models.is_empty() {
            let what = if shared.is_empty() {
                "expected a model: `pub struct Name { body: .., .. }`"
            } else {
                "these sections are shared by the models that follow them, but no model follows: add `pub struct Name { .. }`"
            };
            return Err(syn::Error::new(Span::call_site(), what));
        }
        Ok(Invocation { shared, models })
    }
}

/// Whether a model (`#[attr]`, `pub`, `struct`) starts here rather than a shared section.
fn starts_model(input: ParseStream) -> bool {
    input.peek(Token![#]) || input.peek(Token![pub]) || input.peek(Token![struct])
}

impl Parse for ModelDef {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis: Visibility = input.parse()?;
        input.parse::<Token![struct]>()?;
        let name: Ident = input.parse()?;
        let content;
        braced!(content in input);
        let (sections, rest) = parse_entries(&content)?;
        if let Some(span) = rest {
            return Err(syn::Error::new(
                span,
                "`..` belongs in `inputs: { .., }` or `tasks: { .., }` (every other schema input or target)",
            ));
        }
        Ok(ModelDef {
            attrs,
            vis,
            name,
            sections,
        })
    }
}

/// `key: value, ...` until the end of the stream, with at most one `..` among them.
fn parse_entries(input: ParseStream) -> syn::Result<(Vec<Entry>, Option<Span>)> {
    let mut entries = Vec::new();
    let mut rest = None;
    while !input.is_empty() {
        if input.peek(Token![..]) {
            let dots: Token![..] = input.parse()?;
            if rest.replace(dots.spans[0]).is_some() {
                return Err(syn::Error::new(
                    dots.spans[0],
                    "`..` is given twice; keep one",
                ));
            }
            if input.is_empty() {
                break;
            }
            input
                .parse::<Token![,]>()
                .map_err(|e| syn::Error::new(e.span(), "expected `,` between entries"))?;
            continue;
        }
        entries.push(parse_entry(input)?);
        if input.is_empty() {
            break;
        }
        input
            .parse::<Token![,]>()
            .map_err(|e| syn::Error::new(e.span(), "expected `,` between entries"))?;
    }
    Ok((entries, rest))
}

/// `key: value`.
fn parse_entry(input: ParseStream) -> syn::Result<Entry> {
    let key: Ident = input.call(<Ident as syn::ext::IdentExt>::parse_any)?;
    if !input.peek(Token![:]) {
        return Err(syn::Error::new(
            key.span(),
            format!("expected `:` after `{key}`, as in `{key}: ...`"),
        ));
    }
    input.parse::<Token![:]>()?;
    let value: Value = input.parse()?;
    Ok(Entry { key, value })
}

fn parse_list(input: ParseStream) -> syn::Result<Vec<Value>> {
    Ok(Punctuated::<Value, Token![,]>::parse_terminated(input)?
        .into_iter()
        .collect())
}

impl Parse for Value {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let span = input.span();
        if input.peek(LitStr) {
            return Ok(Value::Str(input.parse()?));
        }
        if input.peek(LitBool) {
            return Ok(Value::Bool(input.parse()?));
        }
        let negative = input.peek(Token![-]);
        if negative {
            input.parse::<Token![-]>()?;
        }
        if input.peek(LitInt) {
            let lit: LitInt = input.parse()?;
            let span = if negative {
                span.join(lit.span()).unwrap_or(lit.span())
            } else {
                lit.span()
            };
            return Ok(Value::Int {
                lit,
                negative,
                span,
            });
        }
        if input.peek(LitFloat) {
            let lit: LitFloat = input.parse()?;
            let span = if negative {
                span.join(lit.span()).unwrap_or(lit.span())
            } else {
                lit.span()
            };
            return Ok(Value::Float {
                lit,
                negative,
                span,
            });
        }
        if negative {
            return Err(syn::Error::new(span, "expected a number after `-`"));
        }
        if input.peek(syn::token::Paren) {
            let content;
            let p = parenthesized!(content in input);
            return Ok(Value::Tuple {
                items: parse_list(&content)?,
                span: p.span.join(),
            });
        }
        if input.peek(syn::token::Bracket) {
            let content;
            let b = bracketed!(content in input);
            return Ok(Value::List {
                items: parse_list(&content)?,
                span: b.span.join(),
            });
        }
        if input.peek(syn::token::Brace) {
            let content;
            let b = braced!(content in input);
            let (entries, rest) = parse_entries(&content)?;
            return Ok(Value::Map {
                entries,
                rest,
                span: b.span.join(),
            });
        }
        if input.peek(Ident) && (input.peek2(syn::token::Bracket) || input.peek2(syn::token::Paren))
        {
            return Ok(Value::Call(input.parse()?));
        }
        if input.peek(Ident) && !input.peek2(Token![::]) && !input.peek2(Token![<]) {
            let name: Ident = input.call(<Ident as syn::ext::IdentExt>::parse_any)?;
            return Ok(Value::Call(Call {
                name,
                brackets: None,
                args: None,
            }));
        }
        let ty: syn::Type = input.parse().map_err(|e| {
            syn::Error::new(
                e.span(),
                "expected a value: a number, a string, a name, `[..]`, `(..)` or `{ .. }`",
            )
        })?;
        Ok(Value::Type(ty))
    }
}

impl Parse for Call {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let name: Ident = input.call(<Ident as syn::ext::IdentExt>::parse_any)?;
        let brackets = if input.peek(syn::token::Bracket) {
            let content;
            let b = bracketed!(content in input);
            Some((b.span.join(), parse_list(&content)?))
        } else {
            None
        };
        let args = if input.peek(syn::token::Paren) {
            let content;
            let p = parenthesized!(content in input);
            let items: Punctuated<Arg, Token![,]> = Punctuated::parse_terminated(&content)?;
            Some((p.span.join(), items.into_iter().collect()))
        } else {
            None
        };
        Ok(Call {
            name,
            brackets,
            args,
        })
    }
}

impl Parse for Arg {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        if input.peek(Ident) && input.peek2(Token![=]) {
            let key: Ident = input.call(<Ident as syn::ext::IdentExt>::parse_any)?;
            input.parse::<Token![=]>()?;
            let value: Value = input.parse()?;
            return Ok(Arg::Keyed { key, value });
        }
        if input.peek(Ident) && (input.peek2(Token![,]) || input.is_empty() || peek_end(input)) {
            let fork = input.fork();
            let ident: Ident = fork.call(<Ident as syn::ext::IdentExt>::parse_any)?;
            if fork.is_empty() || fork.peek(Token![,]) {
                let _: Ident = input.call(<Ident as syn::ext::IdentExt>::parse_any)?;
                return Ok(Arg::Flag(ident));
            }
        }
        Ok(Arg::Positional(input.parse()?))
    }
}

fn peek_end(input: ParseStream) -> bool {
    let fork = input.fork();
    fork.call(<Ident as syn::ext::IdentExt>::parse_any).is_ok() && fork.is_empty()
}

/// Best effort for the fallback expansion after a parse error: the `attrs vis struct Name`
/// of every model whose header still reads, wherever the error is.
pub fn parse_headers(tokens: TokenStream) -> Vec<(Vec<Attribute>, Visibility, Ident)> {
    struct Headers(Vec<(Vec<Attribute>, Visibility, Ident)>);
    impl Parse for Headers {
        fn parse(input: ParseStream) -> syn::Result<Self> {
            let mut headers = Vec::new();
            while !input.is_empty() {
                let fork = input.fork();
                let header = (|| -> syn::Result<_> {
                    let attrs = fork.call(Attribute::parse_outer)?;
                    let vis: Visibility = fork.parse()?;
                    fork.parse::<Token![struct]>()?;
                    let name: Ident = fork.parse()?;
                    if !fork.peek(syn::token::Brace) {
                        return Err(fork.error("expected `{`"));
                    }
                    Ok((attrs, vis, name))
                })();
                match header {
                    Ok(h) => {
                        use syn::parse::discouraged::Speculative;
                        input.advance_to(&fork);
                        headers.push(h);
                    }
                    Err(_) => {
                        input.parse::<proc_macro2::TokenTree>()?;
                    }
                }
            }
            Ok(Headers(headers))
        }
    }
    syn::parse2::<Headers>(tokens)
        .map(|h| h.0)
        .unwrap_or_default()
}
