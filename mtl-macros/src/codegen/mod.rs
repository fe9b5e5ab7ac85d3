//! Code generation: the builder type, the dfdx network, the outputs struct and the runtime
//! trait impls of a resolved [`Model`], by what each part emits: `spec` (the builder and its
//! `ModelSpec`), `network` (the body, towers, heads and outputs types, parameter names),
//! `moe` (mixture-of-experts bodies), `forward` (`Module`, `ModuleMut`, `TaskNetwork`),
//! `summary` (`Display`) and `fallback` (what a model with errors expands to).
//!
//! Generated code names dfdx and the runtime only through `::mtl::__private`, so a user needs
//! no dfdx import and no dependency other than `mtl`.
//!
//! A model `Name` defines these items: `Name` (the builder), `NameNetwork`, `NameTowers`,
//! `NameHeads`, `NameOutputs`, and for mixture-of-experts bodies `NameGates` (or, for `ple`,
//! `NameLevel<l>`, `NameLevel<l>Gates` and, from level 2, `NameLevel<l>Experts`). They live in
//! a hidden module per model (`scope`), so a clash with a user's name is one error or none.

pub mod fallback;
mod forward;
mod moe;
mod network;
mod scope;
mod spec;
mod summary;

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::Ident;

pub use fallback::fallback;

use crate::model::Model;

/// Whether `name` can name a struct field: an identifier, or a keyword written raw
/// (`r#type`; `self`, `Self`, `super` and `crate` cannot be).
pub fn is_field_name(name: &str) -> bool {
    syn::parse_str::<Ident>(name).is_ok() || syn::parse_str::<Ident>(&format!("r#{name}")).is_ok()
}

/// The field for `name` (checked by [`is_field_name`]), raw when `name` is a keyword.
pub fn field(name: &str, span: proc_macro2::Span) -> Ident {
    match syn::parse_str::<Ident>(name) {
        Ok(_) => Ident::new(name, span),
        Err(_) => Ident::new_raw(name, span),
    }
}

fn private() -> TokenStream {
    quote!(::mtl::__private)
}

/// The type names one model defines.
pub struct Names {
    pub model: Ident,
    pub network: Ident,
    pub towers: Ident,
    pub heads: Ident,
    /// The AITM transfers (a network field only when a task has one).
    pub transfers: Ident,
    pub outputs: Ident,
}

impl Names {
    pub fn of(model: &Ident) -> Names {
        Names {
            model: model.clone(),
            network: format_ident!("{}Network", model),
            towers: format_ident!("{}Towers", model),
            heads: format_ident!("{}Heads", model),
            transfers: format_ident!("{}Transfers", model),
            outputs: format_ident!("{}Outputs", model),
        }
    }
}

pub fn expand(mut model: Model) -> TokenStream {
    // The items are written for the model's hidden module (see `scope`).
    let inner_vis = scope::inner_visibility(&model.vis);
    let outer_vis = std::mem::replace(&mut model.vis, inner_vis);
    if let crate::model::Body::Custom { ty, .. } = &mut model.body {
        *ty = scope::inner_type(ty);
    }
    let model = &model;
    let names = Names::of(&model.name);
    let tasks: Vec<Ident> = model.tasks.iter().map(|t| field(&t.name, t.span)).collect();
    let body = network::body(model, &tasks);
    let spec = spec::expand(model, &names);
    let types = network::expand(model, &names, &tasks, &body);
    let forward = forward::expand(model, &names, &tasks, &body);
    let summary = summary::expand(model, &names, &tasks, &body);
    scope::wrap(
        &model.name,
        &outer_vis,
        quote!(#spec #types #forward #summary),
    )
}
