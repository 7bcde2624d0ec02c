//! The web-messaging operations against the real emulator: reading a deployment, and the code
//! exchange's refusals, which carry Genesys' code and are not retried when retrying cannot help.

mod common;

use common::*;
use domain::webmessaging::{
    DeploymentStatus, OAUTH_EXCHANGE_PATH, OAuthExchangeRequest, OAuthRequestParameters,
};
use genesys_client::{GenesysApi, GenesysError};
use mock_genesys::DEFAULT_DEPLOYMENT_ID;

#[actix_rt::test]
async fn reads_a_deployment_with_the_view_permission() {
    let mock = emulator();
    let (client, _) = client(config(&mock));
    let deployment = client.get_deployment(DEFAULT_DEPLOYMENT_ID).await.unwrap();
    assert_eq!(deployment.status, DeploymentStatus::Active);
    assert!(deployment.allows_origin("http://localhost:8080"));
}

#[actix_rt::test]
async fn a_deployment_genesys_does_not_know_is_rejected_and_a_wrong_route_is_an_upstream_failure() {
    let mock = emulator();
    let (client, _) = client(config(&mock));
    let missing = client
        .get_deployment("00000000-0000-4000-8000-000000000000")
        .await
        .unwrap_err();
    assert!(
        matches!(&missing, GenesysError::Rejected { status: 404, code, .. } if code == "not.found"),
        "{missing:?}"
    );
    let mut misrouted = config(&mock);
    misrouted.endpoints.api_base = format!("{}/wrong-prefix", mock.base_url());
    let (misrouted_client, _) = common::client(misrouted);
    let error = misrouted_client
        .get_deployment(DEFAULT_DEPLOYMENT_ID)
        .await
        .unwrap_err();
    assert!(
        matches!(error, GenesysError::Upstream { status: 404, .. }),
        "{error:?}"
    );
}

#[actix_rt::test]
async fn without_the_view_permission_the_read_is_an_auth_failure() {
    let mock = emulator();
    let (client, _) = client(config_for(
        &mock,
        "no-scope-client",
        "no-scope-secret",
        quick_retries(),
    ));
    let error = client.get_deployment(DEFAULT_DEPLOYMENT_ID).await.unwrap_err();
    assert!(
        matches!(error, GenesysError::UpstreamAuth { status: 403, .. }),
        "{error:?}"
    );
}

#[actix_rt::test]
async fn an_exchange_the_identity_provider_fails_is_answered_with_genesys_code_after_one_call() {
    let mock = emulator();
    let (client, _) = client(config(&mock));
    // The default deployment's provider (localhost:3000) does not run here.
    let request = OAuthExchangeRequest {
        deployment_id: DEFAULT_DEPLOYMENT_ID.to_owned(),
        oauth: OAuthRequestParameters {
            code: Some("a-code".to_owned()),
            redirect_uri: "http://localhost:8080/".to_owned(),
            ..OAuthRequestParameters::default()
        },
        journey_context: None,
    };
    let error = client.exchange_code(&request).await.unwrap_err();
    assert!(
        matches!(&error, GenesysError::Rejected { status: 502, code, .. } if code.starts_with("identity.provider.")),
        "{error:?}"
    );
    assert_eq!(
        journal(&mock, Some(OAUTH_EXCHANGE_PATH)).len(),
        1,
        "a 502 of the exchange is final"
    );
}
