//! Wire types, validation rules and error codes of the guest-token service.
//!
//! Everything here is pure data: no I/O, no clocks other than those passed in. The Genesys
//! emulator (`mock-genesys`) and the Genesys client both use [`genesys`] so the upstream contract
//! has exactly one definition; the API uses [`api`] for its own request, response and problem
//! bodies. [`webmessaging`] holds Genesys web messaging (token routes, deployments, the WebSocket's
//! actions and envelopes, and the one origin rule both the emulator and the API apply), and [`oidc`]
//! the OpenID Connect documents a code exchange reads and writes. Validation newtypes ([`QueueId`],
//! [`LanguageTag`], [`CustomerId`], [`Attributes`]) can only hold values that passed their checks.

pub mod api;
pub mod genesys;
pub mod oidc;
mod validation;
pub mod webmessaging;

pub use validation::{
    ATTRIBUTE_KEY_MAX_CHARS, ATTRIBUTE_VALUE_MAX_CHARS, Attributes, CUSTOMER_ID_MAX_CHARS, CustomerId,
    FieldViolation, LANGUAGE_TAG_MAX_CHARS, LanguageTag, MAX_ATTRIBUTES, QueueId,
};
