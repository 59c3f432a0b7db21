//! Glue between the generated bindings and the SDK's types. Not public API: used by
//! [`crate::export_policy!`] only.
//!
//! The `wit-bindgen` output is quarantined in [`bindings`] (compiled for `wasm32` only),
//! so nothing else in the SDK or in policies depends on its shapes.

use crate::log::Level;
use crate::{Action, Effect, Policy, Verdict};
#[cfg(target_arch = "wasm32")]
use std::sync::OnceLock;

#[cfg(target_arch = "wasm32")]
#[allow(missing_debug_implementations, unsafe_code, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit/policy-0.1.0",
        world: "evaluator",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "arbiter_guest::__private::bindings",
    });
}

#[cfg(target_arch = "wasm32")]
mod convert;

/// Sends a log line to the host (component) or the test capture (native).
pub fn log(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    {
        use bindings::arbiter::policy::host;
        use bindings::arbiter::policy::types::LogLevel;
        let level = match level {
            Level::Trace => LogLevel::Trace,
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        };
        host::log(level, message);
    }
    #[cfg(not(target_arch = "wasm32"))]
    crate::testing::capture_log(level, message);
}

/// The verdict `evaluate` returns when the SDK cannot run the policy at all. It is a deny
/// so that a broken plugin fails closed even if the host's on-error setting is lenient.
pub fn failure(reason: String) -> Verdict {
    Verdict::deny(reason)
}

/// Runs `P` on an action whose arguments are still JSON text, and brings the verdict
/// within the contract's bounds ([`crate::bounds::enforce`]).
pub fn evaluate_parsed<P: Policy>(
    settings: &Result<P::Settings, String>,
    action: Result<Action, String>,
) -> Verdict {
    crate::bounds::enforce(evaluate_unbounded::<P>(settings, action))
}

/// [`evaluate_parsed`] without the bounds: only for the host's adversarial fixture,
/// which must hand the host verdicts past them (see [`crate::export_policy!`]).
pub fn evaluate_unbounded<P: Policy>(
    settings: &Result<P::Settings, String>,
    action: Result<Action, String>,
) -> Verdict {
    let settings = match settings {
        Ok(settings) => settings,
        Err(message) => return failure(message.clone()),
    };
    match action {
        Ok(action) => P::evaluate(settings, &action),
        Err(message) => failure(message),
    }
}

/// Effect helper used by conversions.
pub fn effect_name(effect: Effect) -> &'static str {
    match effect {
        Effect::Allow => "allow",
        Effect::Deny => "deny",
        Effect::StepUp => "step-up",
        Effect::Abstain => "abstain",
    }
}

/// Settings are parsed once per instance: the host gives each instance fixed settings,
/// the ones it checked with `validate` when it loaded the plugin, so they are not
/// validated again here (that would cost every new instance the validation's time).
#[cfg(target_arch = "wasm32")]
pub fn settings<P: Policy>(
    cell: &'static OnceLock<Result<P::Settings, String>>,
) -> &'static Result<P::Settings, String>
where
    P::Settings: Send + Sync + 'static,
{
    cell.get_or_init(|| {
        crate::policy::parse_settings_unchecked::<P>(&bindings::arbiter::policy::host::settings())
    })
}

#[cfg(target_arch = "wasm32")]
pub use convert::{action_from_wit, info_to_wit, verdict_to_wit};

/// Validates settings; when they are this plugin's own settings (the host validates
/// those at load and when it prewarms an instance), keeps them parsed, so the instance's
/// first evaluation does not parse them again.
#[cfg(target_arch = "wasm32")]
pub fn validate_and_keep<P: Policy>(
    cell: &'static OnceLock<Result<P::Settings, String>>,
    text: String,
) -> Result<(), String>
where
    P::Settings: Send + Sync + 'static,
{
    let parsed = crate::policy::parse_settings::<P>(&text)?;
    if cell.get().is_none() && text == bindings::arbiter::policy::host::settings() {
        let _ = cell.set(Ok(parsed));
    }
    Ok(())
}

/// The task's recent history, from the host.
#[cfg(target_arch = "wasm32")]
pub fn host_history() -> Vec<crate::HistoryEntry> {
    convert::history_from_wit(bindings::arbiter::policy::host::history())
}

/// The task's sticky labels, from the host.
#[cfg(target_arch = "wasm32")]
pub fn host_task_labels() -> Vec<String> {
    bindings::arbiter::policy::host::task_labels()
}

/// Exports a [`Policy`] as the plugin's implementation of the `evaluator` world.
///
/// Use it once, at the crate root of a `cdylib` crate. On non-`wasm32` targets it expands
/// to nothing, so the same crate compiles natively for unit tests.
///
/// Every verdict goes through [`crate::bounds::enforce`] on its way out: a reason past
/// the contract's bound is clipped, and a verdict past any other bound becomes a deny
/// that says why (see [`crate::bounds`]).
///
/// `export_policy!(@unbounded Type)` skips that step. It is not for policies: it exists
/// for the host's adversarial test fixture, which must hand the host verdicts past the
/// bounds to prove that the host refuses them.
#[macro_export]
macro_rules! export_policy {
    ($policy:ty) => {
        $crate::__export_policy_with!($policy, evaluate_parsed);
    };
    (@unbounded $policy:ty) => {
        $crate::__export_policy_with!($policy, evaluate_unbounded);
    };
}

/// The body of [`export_policy!`], with the evaluation step it names.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_policy_with {
    ($policy:ty, $evaluate:ident) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            use $crate::__private::bindings as __b;

            struct __ArbiterExport;

            static __SETTINGS: ::std::sync::OnceLock<
                ::std::result::Result<<$policy as $crate::Policy>::Settings, ::std::string::String>,
            > = ::std::sync::OnceLock::new();

            impl __b::Guest for __ArbiterExport {
                fn describe() -> __b::PluginInfo {
                    $crate::__private::info_to_wit(<$policy as $crate::Policy>::describe())
                }

                fn validate(
                    settings: ::std::string::String,
                ) -> ::std::result::Result<(), ::std::string::String> {
                    $crate::__private::validate_and_keep::<$policy>(&__SETTINGS, settings)
                }

                fn evaluate(action: __b::Action) -> __b::Verdict {
                    let settings = $crate::__private::settings::<$policy>(&__SETTINGS);
                    let action = $crate::__private::action_from_wit(action);
                    $crate::__private::verdict_to_wit($crate::__private::$evaluate::<$policy>(
                        settings, action,
                    ))
                }
            }

    __b::export!(__ArbiterExport with_types_in __b);
        };
    };
}
