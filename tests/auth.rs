//! API keys at the door of the client router.

use axum::http::{Method, StatusCode};
use integration_tests::{call, project, project_items, state};
use shared::auth::{ApiKey, KeyKind};

const PATH: &str = "/api/client/organizations";
const BODY: &str = r#"{"identifier":[{"external_id":"acme"}]}"#;

#[tokio::test]
async fn requests_without_a_valid_key_are_401_and_write_nothing() {
    let state = state().await;
    let p = project(&state).await;
    let router = client::router(state.clone());
    let forged = ApiKey::generate(p.project_id, KeyKind::Secret).unwrap();
    for key in [
        None,
        Some("sk_nonsense"),
        Some("Basic abc"),
        Some(forged.expose()),
    ] {
        let exchange = call(&router, Method::POST, PATH, key, Some(BODY)).await;
        assert_eq!(exchange.status, StatusCode::UNAUTHORIZED, "key {key:?}");
        assert_eq!(
            exchange.content_type.as_deref(),
            Some("application/problem+json")
        );
    }
    assert!(project_items(&state, p.project_id).await.is_empty());
}

#[tokio::test]
async fn a_revoked_key_is_refused_at_once_and_others_keep_working() {
    let state = state().await;
    let p = project(&state).await;
    let router = client::router(state.clone());
    let extra = state
        .store
        .create_key(p.project_id, KeyKind::Publishable)
        .await
        .unwrap();
    assert_eq!(
        call(&router, Method::POST, PATH, Some(&extra.key), Some(BODY))
            .await
            .status,
        StatusCode::OK
    );
    state
        .store
        .revoke_key(&ApiKey::parse(&extra.key).unwrap())
        .await
        .unwrap();
    let refused = call(&router, Method::POST, PATH, Some(&extra.key), Some(BODY)).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(refused.body["detail"].as_str().unwrap().contains("revoked"));
    assert_eq!(
        call(
            &router,
            Method::POST,
            PATH,
            Some(&p.publishable_key),
            Some(BODY)
        )
        .await
        .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn keys_are_stored_only_as_hashes() {
    let state = state().await;
    let p = project(&state).await;
    let items = state
        .aws
        .dynamodb
        .scan()
        .table_name(&state.config.table)
        .filter_expression("begins_with(PK, :pk)")
        .expression_attribute_values(
            ":pk",
            integration_tests::aws_sdk_dynamodb::types::AttributeValue::S(format!(
                "P#{}",
                p.project_id
            )),
        )
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default();
    let copies = shared::keys::API_KEY_SHARDS as usize;
    assert_eq!(items.len(), 1 + 2 * copies, "project + two keys' copies");
    let dump = format!("{items:?}");
    assert!(!dump.contains(&p.secret_key));
    assert!(!dump.contains(&p.publishable_key));
}

mod sessions {
    use super::*;
    use axum::routing::get;
    use shared::auth::{issue_session_token, Session, SessionClaims};

    fn me(state: shared::AppState) -> axum::Router {
        axum::Router::new()
            .route(
                "/me",
                get(|session: Session| async move {
                    axum::Json(serde_json::json!({
                        "project_id": session.project_id, "user": session.user, "org_id": session.org_id
                    }))
                }),
            )
            .with_state(state)
    }

    fn exp() -> u64 {
        time::OffsetDateTime::now_utc().unix_timestamp() as u64 + 600
    }

    #[tokio::test]
    async fn a_local_session_token_is_verified_with_its_projects_secret() {
        let state = state().await;
        let p = project(&state).await;
        let router = me(state.clone());
        let claims = SessionClaims {
            sub: "user_1".into(),
            project_id: p.project_id,
            org_id: Some("org_9".into()),
            exp: exp(),
        };
        let token = issue_session_token(&claims, p.dev_token_secret.as_deref().unwrap()).unwrap();
        let ok = call(&router, Method::GET, "/me", Some(&token), None).await;
        assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);
        assert_eq!(ok.body["user"], "user_1");
        assert_eq!(ok.body["org_id"], "org_9");

        // Signed with another project's secret, or a made-up one: refused.
        let other = project(&state).await;
        let foreign =
            issue_session_token(&claims, other.dev_token_secret.as_deref().unwrap()).unwrap();
        assert_eq!(
            call(&router, Method::GET, "/me", Some(&foreign), None)
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );
        let expired = issue_session_token(
            &SessionClaims {
                exp: 1,
                ..claims.clone()
            },
            p.dev_token_secret.as_deref().unwrap(),
        )
        .unwrap();
        assert_eq!(
            call(&router, Method::GET, "/me", Some(&expired), None)
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            call(&router, Method::GET, "/me", Some("a.b.c"), None)
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            call(&router, Method::GET, "/me", None, None).await.status,
            StatusCode::UNAUTHORIZED
        );
        // An API key is a credential, but not a session.
        assert_eq!(
            call(&router, Method::GET, "/me", Some(&p.secret_key), None)
                .await
                .status,
            StatusCode::FORBIDDEN
        );
    }

    #[tokio::test]
    /// Issue 18, attack 3: no route relies on an API Gateway authorizer, so
    /// authorizer claims in the request context (which anyone invoking the
    /// function with a crafted event could write) open no session.
    async fn api_gateway_authorizer_claims_are_not_a_session() {
        use lambda_http::aws_lambda_events::apigw::{
            ApiGatewayRequestAuthorizer, ApiGatewayRequestAuthorizerJwtDescription,
            ApiGatewayV2httpRequestContext,
        };
        use tower::ServiceExt;
        let state = state().await;
        let router = me(state);
        let project = uuid::Uuid::now_v7();
        let mut jwt = ApiGatewayRequestAuthorizerJwtDescription::default();
        jwt.claims = [
            ("sub", "user_7"),
            ("project_id", project.to_string().as_str()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let mut authorizer = ApiGatewayRequestAuthorizer::default();
        authorizer.jwt = Some(jwt);
        let mut context = ApiGatewayV2httpRequestContext::default();
        context.authorizer = Some(authorizer);
        let mut request = axum::http::Request::builder()
            .uri("/me")
            .body(axum::body::Body::empty())
            .unwrap();
        request
            .extensions_mut()
            .insert(lambda_http::request::RequestContext::ApiGatewayV2(context));
        let response = router.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
}
