//! The `schema` section (resolving and reading the file at compile time) and `exclude`.

use std::collections::HashSet;
use std::path::Path;

use mtl_runtime::schema::Schema;
use proc_macro2::Span;
use syn::ext::IdentExt;

use super::Errors;
use crate::parse::Value;

fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(Into::into)
        .unwrap_or_default()
}

/// Where a schema path points: relative to CARGO_MANIFEST_DIR, or failing that to the file
/// invoking the macro (as `include_str!` resolves paths).
pub fn resolve_schema_path(lit: &syn::LitStr) -> Result<std::path::PathBuf, String> {
    let rel = lit.value();
    if Path::new(&rel).is_absolute() {
        return Err("the schema path must be relative to the crate root (CARGO_MANIFEST_DIR) so that the build works on every machine".into());
    }
    let from_file = lit
        .span()
        .unwrap()
        .local_file()
        .and_then(|f| f.parent().map(|d| d.join(&rel)));
    let candidates: Vec<std::path::PathBuf> = std::iter::once(manifest_dir().join(&rel))
        .chain(from_file)
        .collect();
    if let Some(file) = candidates.iter().find(|p| p.is_file()) {
        return Ok(file.clone());
    }
    if candidates.iter().any(|p| p.is_dir()) {
        return Err(format!(
            "`{rel}` is a directory; name the schema file in it, e.g. `{}/schema.json`",
            rel.trim_end_matches('/')
        ));
    }
    Err(format!("schema file `{rel}` not found relative to the crate root (CARGO_MANIFEST_DIR) nor to this source file"))
}

pub fn load_schema(value: &Value, errors: &mut Errors) -> Option<(Span, Schema)> {
    let Value::Str(lit) = value else {
        errors.at(value.span(), "`schema` is a path in quotes, relative to the crate root: `schema: \"data/schema.json\"`");
        return None;
    };
    let path = match resolve_schema_path(lit) {
        Ok(p) => p,
        Err(msg) => {
            errors.at(lit.span(), msg);
            return None;
        }
    };
    let rel = lit.value();
    match Schema::from_file(&path) {
        Ok(s) => Some((lit.span(), s)),
        Err(e) => {
            let what = if rel.ends_with(".json") {
                "JSON"
            } else {
                "pbtxt"
            };
            let shown = e.to_string().replace(&path.display().to_string(), &rel);
            errors.at(
                lit.span(),
                format!("cannot read the schema ({what}): {shown}"),
            );
            None
        }
    }
}

pub fn exclude(
    value: &Value,
    schema: Option<&(Span, Schema)>,
    errors: &mut Errors,
) -> HashSet<String> {
    let mut out = HashSet::new();
    let Value::List { items, .. } = value else {
        errors.at(
            value.span(),
            "`exclude` is a list of column names: `exclude: [like, share]`",
        );
        return out;
    };
    for item in items {
        let Some(name) = item.as_ident() else {
            errors.at(item.span(), "expected a column name");
            continue;
        };
        match schema {
            None => errors.at(
                name.span(),
                "`exclude` drops schema columns, but the model has no `schema`",
            ),
            Some((_, s)) if !s.contains(&name.unraw().to_string()) => errors.at(
                name.span(),
                format!(
                    "`{name}` is not a column of the schema; columns: {}",
                    s.column_names().join(", ")
                ),
            ),
            _ => {
                out.insert(name.unraw().to_string());
            }
        }
    }
    out
}
