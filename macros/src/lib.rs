//! `#[ringloop::main]` and `#[ringloop::test]`: an `async fn` run to completion on a fresh
//! ringloop runtime, as `#[tokio::main]` and `#[tokio::test]` do for tokio.
//!
//! Use them through `ringloop` (its default `macros` feature re-exports them), not from this
//! crate directly:
//!
//! ```
//! #[ringloop::main]
//! async fn main() -> std::io::Result<()> {
//!     ringloop::time::sleep(std::time::Duration::from_micros(100)).await;
//!     Ok(())
//! }
//! ```
//!
//! The function becomes a plain `fn` whose body builds a runtime
//! (`ringloop::Builder::new()`, with the options given) and calls `block_on` on the original
//! body. Options, all optional, as `name = value` pairs separated by commas:
//!
//! - `entries = N`: the ring's submission queue size (`Builder::entries`);
//! - `event_interval = N`: task polls between two looks at the ring (`Builder::event_interval`);
//! - `start_paused = true`: the runtime's clock starts paused (`Builder::start_paused`), for
//!   tests of timeouts and retries that should not take their real time;
//! - `crate = "path"`: where to find ringloop when it was renamed or re-exported.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned, ToTokens};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, ItemFn, Lit, MetaNameValue, ReturnType, Token};

/// Runs an `async fn main` on a ringloop runtime built on this thread.
///
/// ```
/// #[ringloop::main(entries = 256)]
/// async fn main() {
///     let answer = ringloop::spawn(async { 40 + 2 }).await.unwrap();
///     assert_eq!(answer, 42);
/// }
/// ```
///
/// If the runtime cannot be built (io_uring missing or disabled, the memory lock limit too low)
/// the program panics with the reason, before the body runs. Build a [`Runtime`] by hand to
/// handle that error yourself.
///
/// [`Runtime`]: https://docs.rs/ringloop/latest/ringloop/struct.Runtime.html
#[proc_macro_attribute]
pub fn main(
    args: proc_macro::TokenStream,
    item: proc_macro::TokenStream,
) -> proc_macro::TokenStream {
    expand(Kind::Main, args.into(), item.into()).into()
}

/// Runs an `async fn` test on a fresh ringloop runtime of its own.
///
/// ```
/// #[ringloop::test]
/// async fn sleeps_at_least_as_long_as_asked() {
///     let start = std::time::Instant::now();
///     ringloop::time::sleep(std::time::Duration::from_millis(2)).await;
///     assert!(start.elapsed() >= std::time::Duration::from_millis(2));
/// }
/// # fn main() {}
/// ```
///
/// Other attributes (`#[should_panic]`, `#[ignore]`, docs) are kept, and the test may return a
/// `Result`, as any `#[test]` may.
#[proc_macro_attribute]
pub fn test(
    args: proc_macro::TokenStream,
    item: proc_macro::TokenStream,
) -> proc_macro::TokenStream {
    expand(Kind::Test, args.into(), item.into()).into()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Main,
    Test,
}

impl Kind {
    fn attribute(self) -> &'static str {
        match self {
            Kind::Main => "#[ringloop::main]",
            Kind::Test => "#[ringloop::test]",
        }
    }
}

/// What the attribute's arguments asked for.
struct Options {
    entries: Option<u32>,
    event_interval: Option<u32>,
    start_paused: Option<bool>,
    krate: syn::Path,
}

fn expand(kind: Kind, args: TokenStream, item: TokenStream) -> TokenStream {
    let mut func: ItemFn = match syn::parse2(item.clone()) {
        Ok(func) => func,
        // Not a function at all: say so, and leave the item as it was so that the only error
        // is ours.
        Err(e) => {
            let error = syn::Error::new(
                e.span(),
                format!("{} goes on an `async fn`", kind.attribute()),
            )
            .to_compile_error();
            return quote! { #error #item };
        }
    };
    let checked = parse_options(kind, args).and_then(|options| {
        check_signature(kind, &func)?;
        Ok(options)
    });
    let options = match checked {
        Ok(options) => options,
        Err(e) => {
            // The function goes out without `async`, so that rustc does not add "`main` cannot
            // be async" (or an unused-async warning) to the one error that explains it.
            func.sig.asyncness = None;
            let error = e.to_compile_error();
            return quote! { #error #func };
        }
    };
    rewrite(kind, &options, func)
}

fn parse_options(kind: Kind, args: TokenStream) -> syn::Result<Options> {
    let mut options = Options {
        entries: None,
        event_interval: None,
        start_paused: None,
        krate: syn::parse_quote!(::ringloop),
    };
    let pairs = Punctuated::<MetaNameValue, Token![,]>::parse_terminated
        .parse2(args)
        .map_err(|e| {
            syn::Error::new(
                e.span(),
                format!(
                    "{} takes options as `name = value`, for example `entries = 256`",
                    kind.attribute()
                ),
            )
        })?;
    let mut seen: Vec<String> = Vec::new();
    for pair in pairs {
        let name = pair
            .path
            .get_ident()
            .map(ToString::to_string)
            .or_else(|| {
                // `crate` is a keyword, so it parses as a path of one segment, not an ident.
                (pair.path.segments.len() == 1 && pair.path.segments[0].ident == "crate")
                    .then(|| "crate".to_owned())
            })
            .unwrap_or_else(|| pair.path.to_token_stream().to_string());
        if seen.contains(&name) {
            return Err(syn::Error::new(
                pair.path.span(),
                format!("`{name}` is given twice"),
            ));
        }
        match name.as_str() {
            "entries" => options.entries = Some(positive_u32(&name, &pair.value)?),
            "event_interval" => options.event_interval = Some(positive_u32(&name, &pair.value)?),
            "start_paused" => options.start_paused = Some(boolean(&name, &pair.value)?),
            "crate" => options.krate = string_path(&pair.value)?,
            other => {
                return Err(syn::Error::new(
                    pair.path.span(),
                    format!(
                        "unknown option `{other}`: {} takes `entries = N`, \
                         `event_interval = N`, `start_paused = true` and `crate = \"path\"`",
                        kind.attribute()
                    ),
                ))
            }
        }
        seen.push(name);
    }
    Ok(options)
}

fn positive_u32(name: &str, value: &Expr) -> syn::Result<u32> {
    let parsed = match value {
        Expr::Lit(ExprLit {
            lit: Lit::Int(int), ..
        }) => int.base10_parse::<u32>().ok().filter(|n| *n > 0),
        _ => None,
    };
    parsed.ok_or_else(|| {
        syn::Error::new(
            value.span(),
            format!("`{name}` takes a whole number from 1 to {}", u32::MAX),
        )
    })
}

fn boolean(name: &str, value: &Expr) -> syn::Result<bool> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Bool(b), ..
        }) => Ok(b.value),
        _ => Err(syn::Error::new(
            value.span(),
            format!("`{name}` takes `true` or `false`"),
        )),
    }
}

fn string_path(value: &Expr) -> syn::Result<syn::Path> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(text),
            ..
        }) => text.parse::<syn::Path>().map_err(|_| {
            syn::Error::new(
                text.span(),
                format!(
                    "`crate` takes a path such as \"ringloop\", not {:?}",
                    text.value()
                ),
            )
        }),
        _ => Err(syn::Error::new(
            value.span(),
            "`crate` takes a path in a string, for example `crate = \"my_reexport::ringloop\"`",
        )),
    }
}

fn check_signature(kind: Kind, func: &ItemFn) -> syn::Result<()> {
    let sig = &func.sig;
    if sig.asyncness.is_none() {
        return Err(syn::Error::new(
            sig.fn_token.span(),
            "the `async` keyword is missing from the function declaration",
        ));
    }
    let what = match kind {
        Kind::Main => "the main function",
        Kind::Test => "a test function",
    };
    // Arguments are for functions that are not `main`: they are moved into the body.
    if !sig.inputs.is_empty() && (kind == Kind::Test || sig.ident == "main") {
        return Err(syn::Error::new(
            sig.inputs.span(),
            format!("{what} cannot take arguments"),
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return Err(syn::Error::new(
            sig.generics.span(),
            format!("{what} cannot be generic"),
        ));
    }
    if kind == Kind::Test {
        if let Some(attr) = func.attrs.iter().find(|a| a.path().is_ident("test")) {
            return Err(syn::Error::new(
                attr.span(),
                "#[ringloop::test] already makes this a test: remove `#[test]`",
            ));
        }
    }
    Ok(())
}

fn rewrite(kind: Kind, options: &Options, mut func: ItemFn) -> TokenStream {
    let krate = &options.krate;
    let entries = options.entries.map(|n| quote! { builder.entries(#n); });
    let event_interval = options
        .event_interval
        .map(|n| quote! { builder.event_interval(#n); });
    let start_paused = options
        .start_paused
        .map(|paused| quote! { builder.start_paused(#paused); });
    let output = match &func.sig.output {
        ReturnType::Default => quote! { () },
        ReturnType::Type(_, ty) => quote! { #ty },
    };
    let body = &func.block;
    let async_body = quote_spanned! {body.span()=> async move #body };
    let expect = format!(
        "ringloop could not build the runtime for `{}`",
        func.sig.ident
    );
    // `__ringloop_body` pins the async block's output to the declared return type before the
    // body is checked against anything else: a body that returns the wrong type is reported
    // at the body (as in a plain `fn`), not at the `block_on` call the user never wrote.
    let new_body = quote! {
        {
            fn __ringloop_body<F: ::core::future::Future<Output = #output>>(future: F) -> F {
                future
            }
            let body = __ringloop_body(#async_body);
            let mut builder = #krate::Builder::new();
            #entries
            #event_interval
            #start_paused
            let runtime = match builder.build() {
                ::core::result::Result::Ok(runtime) => runtime,
                ::core::result::Result::Err(e) => ::core::panic!("{}: {}", #expect, e),
            };
            runtime.block_on(body)
        }
    };
    func.sig.asyncness = None;
    *func.block = syn::parse2(new_body).expect("the generated body is a block");
    let test_attr = (kind == Kind::Test).then(|| quote! { #[::core::prelude::v1::test] });
    quote! {
        #test_attr
        #func
    }
}

#[cfg(test)]
mod tests {
    // Not `super::*`: that would bring this crate's `test` attribute over the built-in one.
    use super::{expand, Kind};
    use proc_macro2::TokenStream;

    fn expanded(kind: Kind, args: &str, item: &str) -> String {
        let args: TokenStream = args.parse().unwrap();
        let item: TokenStream = item.parse().unwrap();
        expand(kind, args, item).to_string()
    }

    fn error_of(kind: Kind, args: &str, item: &str) -> String {
        let out = expanded(kind, args, item);
        let start = out
            .find("compile_error")
            .unwrap_or_else(|| panic!("no compile_error in: {out}"));
        out[start..].split(')').next().unwrap().to_owned()
    }

    #[test]
    fn main_becomes_a_plain_fn_that_blocks_on_its_body() {
        let out = expanded(Kind::Main, "", "async fn main() { work().await }");
        assert!(out.contains("fn main ()"), "{out}");
        assert!(!out.contains("async fn"), "{out}");
        assert!(out.contains(":: ringloop :: Builder :: new ()"), "{out}");
        assert!(out.contains("runtime . block_on (body)"), "{out}");
        assert!(!out.contains("test"), "{out}");
    }

    #[test]
    fn test_gets_the_test_attribute_and_keeps_the_others() {
        let out = expanded(
            Kind::Test,
            "",
            "#[should_panic(expected = \"x\")] async fn t() { panic!(\"x\") }",
        );
        let test_at = out.find(":: core :: prelude :: v1 :: test").unwrap();
        let should_panic_at = out.find("should_panic").unwrap();
        assert!(test_at < should_panic_at, "{out}");
    }

    #[test]
    fn a_main_not_called_main_may_take_arguments() {
        let out = expanded(Kind::Main, "", "async fn serve(port: u16) -> u16 { port }");
        assert!(!out.contains("compile_error"), "{out}");
        assert!(out.contains("fn serve (port : u16)"), "{out}");
    }

    #[test]
    fn options_reach_the_builder() {
        let out = expanded(
            Kind::Main,
            "entries = 256, event_interval = 8, start_paused = true, crate = \"my::rl\"",
            "async fn main() {}",
        );
        assert!(out.contains("builder . entries (256u32)"), "{out}");
        assert!(out.contains("builder . event_interval (8u32)"), "{out}");
        assert!(out.contains("builder . start_paused (true)"), "{out}");
        assert!(out.contains("my :: rl :: Builder :: new ()"), "{out}");
    }

    #[test]
    fn the_return_type_pins_the_body_output() {
        let out = expanded(
            Kind::Main,
            "",
            "async fn main() -> std::io::Result<()> { Ok(()) }",
        );
        assert!(out.contains("Output = std :: io :: Result < () >"), "{out}");
    }

    #[test]
    fn a_sync_fn_is_refused_and_comes_back_unchanged() {
        let out = expanded(Kind::Main, "", "fn main() {}");
        assert!(out.contains("the `async` keyword is missing"), "{out}");
        assert!(out.contains("fn main () { }"), "{out}");
    }

    #[test]
    fn bad_signatures_and_options_get_errors_that_name_the_problem() {
        let cases: &[(Kind, &str, &str, &str)] = &[
            (
                Kind::Main,
                "",
                "async fn main(x: u8) {}",
                "cannot take arguments",
            ),
            (
                Kind::Test,
                "",
                "async fn t(x: u8) {}",
                "cannot take arguments",
            ),
            (Kind::Test, "", "async fn t<T>() {}", "cannot be generic"),
            (
                Kind::Test,
                "",
                "#[test] async fn t() {}",
                "remove `#[test]`",
            ),
            (
                Kind::Main,
                "threads = 2",
                "async fn main() {}",
                "unknown option `threads`",
            ),
            (
                Kind::Main,
                "entries = 0",
                "async fn main() {}",
                "whole number from 1",
            ),
            (
                Kind::Main,
                "entries = -1",
                "async fn main() {}",
                "whole number from 1",
            ),
            (
                Kind::Main,
                "entries = \"8\"",
                "async fn main() {}",
                "whole number from 1",
            ),
            (
                Kind::Main,
                "entries = 8, entries = 9",
                "async fn main() {}",
                "given twice",
            ),
            (
                Kind::Test,
                "start_paused = 1",
                "async fn t() {}",
                "`true` or `false`",
            ),
            (
                Kind::Main,
                "crate = ringloop",
                "async fn main() {}",
                "path in a string",
            ),
            (
                Kind::Main,
                "crate = \"1x\"",
                "async fn main() {}",
                "takes a path",
            ),
            (
                Kind::Main,
                "entries",
                "async fn main() {}",
                "`name = value`",
            ),
            (Kind::Test, "", "struct S;", "goes on an `async fn`"),
        ];
        for (kind, args, item, wanted) in cases {
            let error = error_of(*kind, args, item);
            assert!(
                error.contains(wanted),
                "{args:?} on {item:?}: wanted {wanted:?}, got {error}"
            );
        }
    }

    #[test]
    fn a_refused_async_fn_loses_its_async_so_rustc_adds_nothing() {
        let out = expanded(Kind::Main, "threads = 2", "async fn main() {}");
        assert!(out.contains("fn main () { }"), "{out}");
        assert!(!out.contains("async"), "{out}");
    }
}
