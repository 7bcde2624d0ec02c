//! The contract suite against the docker-compose stack, through its published ports.
//!
//! `cargo xtask e2e` brings the stack up, runs this with `CONTRACT_API_URL` and `CONTRACT_MOCK_URL`
//! set, and brings it down again. The checks share one emulator, so they run in order in one test.

use contract_tests::{
    Endpoints, answers_preflights_only_for_the_allowed_origin, issues_a_guest_token,
    recovers_from_a_revoked_access_token, refuses_a_disallowed_origin_before_calling_genesys,
    waits_out_a_rate_limit_from_genesys,
};

#[actix_rt::test]
#[ignore = "needs the compose stack: run `cargo xtask e2e`"]
async fn the_compose_stack_honours_the_contract() {
    let endpoints = Endpoints::from_env();
    issues_a_guest_token(&endpoints).await;
    answers_preflights_only_for_the_allowed_origin(&endpoints).await;
    refuses_a_disallowed_origin_before_calling_genesys(&endpoints).await;
    waits_out_a_rate_limit_from_genesys(&endpoints).await;
    recovers_from_a_revoked_access_token(&endpoints).await;
    issues_a_guest_token(&endpoints).await;
}
