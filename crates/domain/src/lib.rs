//! Wire types, validation rules and error codes of the guest-token service.
//!
//! Everything here is pure data: no I/O, no clocks other than those passed in. The Genesys
//! emulator (`mock-genesys`) and the Genesys client both use [`genesys`] so the upstream contract
//! has exactly one definition; the API uses [`api`] for its own request, response and problem
//! bodies. Validation newtypes ([`QueueId`], [`LanguageTag`], [`CustomerId`], [`Attributes`]) can
//! only hold values that passed their checks.

pub mod api;
pub mod genesys;
mod validation;

pub use validation::{
    ATTRIBUTE_KEY_MAX_CHARS, ATTRIBUTE_VALUE_MAX_CHARS, Attributes, CUSTOMER_ID_MAX_CHARS, CustomerId,
    FieldViolation, LANGUAGE_TAG_MAX_CHARS, LanguageTag, MAX_ATTRIBUTES, QueueId,
};
