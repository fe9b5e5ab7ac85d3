//! Where a model's items live: in a hidden module of their own, re-exported into the scope of
//! the `mtl_model!` call.
//!
//! Generated code names its own types (`VideoNetwork`, `VideoOutputs`, ...) by name. Declared
//! side by side with the user's items, a user type that happens to take one of those names
//! (`struct VideoNetwork;`) would capture every such reference and turn one clash into dozens
//! of errors inside the generated code. In their own module the generated items see their own
//! names first, so:
//! - the builder is re-exported by name: a user item or another model of the same name is
//!   one error, "the name `Video` is defined multiple times", on the model's name;
//! - every other generated name is re-exported by a glob, which a user item of the same name
//!   shadows: the model keeps working, and the user's type keeps its name.
//!
//! The module imports its parent's names (`use super::*`), so a custom body's type and the
//! attributes on the model resolve as they would beside it. Paths that start with `self` or
//! `super` are moved one level up to keep their meaning.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::{Ident, Visibility};

/// The hidden module's name: the model's name plus a hash of where it is written, so two
/// models of the same name (a mistake reported on the builder's re-export) never also clash
/// on their modules.
fn module_name(name: &Ident) -> Ident {
    // FNV-1a over the span's debug form (file position): stable within one compilation,
    // which is all a private name needs.
    let located = format!("{name}{:?}", name.span());
    let hash = located.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format_ident!("__mtl_model_{}_{:016x}", name, hash)
}

/// The visibility, inside the hidden module, that gives an item the visibility `vis` has in
/// the module around it.
pub fn inner_visibility(vis: &Visibility) -> Visibility {
    match vis {
        Visibility::Public(_) => vis.clone(),
        Visibility::Inherited => syn::parse_quote!(pub(super)),
        Visibility::Restricted(r) => {
            let path = &r.path;
            let first = path.segments.first().map(|s| s.ident.to_string());
            match first.as_deref() {
                // `pub(crate)` and `pub(in crate::a)` are absolute.
                Some("crate") => vis.clone(),
                // `pub(self)` is private: visible in the module around the hidden one.
                Some("self") if path.segments.len() == 1 => syn::parse_quote!(pub(super)),
                Some("self") => {
                    let rest = path.segments.iter().skip(1);
                    syn::parse_quote!(pub(in super #(::#rest)*))
                }
                _ => syn::parse_quote!(pub(in super::#path)),
            }
        }
    }
}

/// `ty` as written beside the model, for use inside the hidden module.
pub fn inner_type(ty: &syn::Type) -> syn::Type {
    let syn::Type::Path(p) = ty else {
        return ty.clone();
    };
    if p.qself.is_some() || p.path.leading_colon.is_some() {
        return ty.clone();
    }
    let mut p = p.clone();
    match p
        .path
        .segments
        .first()
        .map(|s| s.ident.to_string())
        .as_deref()
    {
        Some("self") => {
            let first = &mut p.path.segments[0].ident;
            *first = Ident::new("super", first.span());
        }
        Some("super") => {
            let span = p.path.segments[0].ident.span();
            p.path
                .segments
                .insert(0, syn::PathSegment::from(Ident::new("super", span)));
        }
        _ => {}
    }
    syn::Type::Path(p)
}

/// `items` (written with [`inner_visibility`]) in the model's hidden module, and the
/// re-exports that make them visible as `vis` beside the `mtl_model!` call.
pub fn wrap(name: &Ident, vis: &Visibility, items: TokenStream) -> TokenStream {
    let module = module_name(name);
    quote! {
        #[doc(hidden)]
        #[allow(non_snake_case)]
        mod #module {
            #[allow(unused_imports)]
            use super::*;
            #items
        }
        #[allow(unused_imports)]
        #vis use #module::#name;
        #[allow(unused_imports)]
        #vis use #module::*;
    }
}
