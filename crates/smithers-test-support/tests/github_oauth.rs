//! The GitHub stand-in answers in GitHub's published shapes: its `/user`
//! against the `private-user` schema of GitHub's OpenAPI description (the
//! fixture names its source), its token answers against the members GitHub
//! Docs list for "Generating a user access token for a GitHub App" and
//! "Troubleshooting OAuth app access token request errors".

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

use std::collections::BTreeSet;

use serde_json::Value;
use smithers_test_support::github_oauth::{
    CLIENT_ID, CLIENT_SECRET, GithubStandIn, TOKEN_PREFIX, s256,
};

const REDIRECT: &str = "http://127.0.0.1:9/sign-in/github/callback";
const VERIFIER: &str = "dBjftJeZ4CVP-mJ92K9kWmgaZ2QKkq8aiVpoJXl0ygHw9Yx";

fn schema() -> Value {
    serde_json::from_str(include_str!("fixtures/github-private-user.schema.json")).unwrap()
}

/// Whether `value` is of the fragment's `schema` (type, nullable,
/// required members, recursively), saying where it is not.
fn conforms(path: &str, value: &Value, schema: &Value) -> Result<(), String> {
    if value.is_null() {
        return if schema["nullable"] == true {
            Ok(())
        } else {
            Err(format!("{path} is null"))
        };
    }
    let ok = match schema["type"].as_str().unwrap() {
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "boolean" => value.is_boolean(),
        "object" => value.is_object(),
        other => panic!("no type {other} in the fragment"),
    };
    if !ok {
        return Err(format!("{path} is not a {}: {value}", schema["type"]));
    }
    if let Some(required) = schema["required"].as_array() {
        for name in required {
            let name = name.as_str().unwrap();
            if value.get(name).is_none() {
                return Err(format!("{path}.{name} is missing"));
            }
        }
    }
    if let Some(properties) = schema["properties"].as_object() {
        for (name, property) in properties {
            if let Some(member) = value.get(name) {
                conforms(&format!("{path}.{name}"), member, property)?;
            }
        }
    }
    Ok(())
}

/// Through the flow to a token answer, as a client with `verifier`.
async fn token_answer(github: &GithubStandIn, verifier: &str) -> Value {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    github.sign_in_as("octocat");
    let authorize = reqwest::Url::parse_with_params(
        &format!("{}/login/oauth/authorize", github.base),
        &[
            ("client_id", CLIENT_ID),
            ("redirect_uri", REDIRECT),
            ("state", "st/ate+1"),
            ("code_challenge", &s256(VERIFIER)),
            ("code_challenge_method", "S256"),
        ],
    )
    .unwrap();
    let back = http.get(authorize).send().await.unwrap();
    assert_eq!(back.status(), 302);
    let to = reqwest::Url::parse(back.headers()["location"].to_str().unwrap()).unwrap();
    assert!(to.as_str().starts_with(REDIRECT), "{to}");
    let query: Vec<(String, String)> = to.query_pairs().into_owned().collect();
    assert!(
        query.contains(&("state".into(), "st/ate+1".into())),
        "{query:?}"
    );
    let code = query.iter().find(|(k, _)| k == "code").unwrap().1.clone();
    let body = format!(
        "client_id={CLIENT_ID}&client_secret={CLIENT_SECRET}&code={code}&redirect_uri={}&code_verifier={verifier}",
        REDIRECT.replace(':', "%3A").replace('/', "%2F")
    );
    let answer = http
        .post(format!("{}/login/oauth/access_token", github.base))
        .header("accept", "application/json")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    // GitHub answers refusals with 200 too.
    assert_eq!(answer.status(), 200);
    serde_json::from_slice(&answer.bytes().await.unwrap()).unwrap()
}

fn members(value: &Value) -> BTreeSet<&str> {
    value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect()
}

#[tokio::test]
async fn user_matches_the_published_schema() {
    let github = GithubStandIn::start().await;
    let tokens = token_answer(&github, VERIFIER).await;
    assert_eq!(
        members(&tokens),
        BTreeSet::from([
            "access_token",
            "expires_in",
            "refresh_token",
            "refresh_token_expires_in",
            "scope",
            "token_type",
        ])
    );
    assert_eq!(tokens["token_type"], "bearer");
    let token = tokens["access_token"].as_str().unwrap();
    assert!(token.starts_with(TOKEN_PREFIX));

    let http = reqwest::Client::new();
    for base in [github.base.clone(), format!("{}/api/v3", github.base)] {
        let user = http
            .get(format!("{base}/user"))
            .bearer_auth(token)
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", "2022-11-28")
            .send()
            .await
            .unwrap();
        assert_eq!(user.status(), 200);
        let user: Value = serde_json::from_slice(&user.bytes().await.unwrap()).unwrap();
        conforms("user", &user, &schema()).unwrap();
        assert_eq!(user["login"], "octocat");
        assert_eq!(user["id"], 1);
        assert_eq!(user["node_id"], "MDQ6VXNlcjE=");
    }
    // The check itself refuses what the schema does.
    let mut user = smithers_test_support::github_oauth::private_user(
        &smithers_test_support::github_oauth::Account {
            login: "octocat".into(),
            id: 1,
        },
    );
    user.as_object_mut().unwrap().remove("node_id");
    assert!(conforms("user", &user, &schema()).is_err());
    user["node_id"] = Value::Null;
    assert!(conforms("user", &user, &schema()).is_err());

    // Without the token, or with another: GitHub's 401.
    let refused = http
        .get(format!("{}/user", github.base))
        .bearer_auth("ghu_not-one")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
}

#[tokio::test]
async fn a_wrong_verifier_gets_githubs_error_shape() {
    let github = GithubStandIn::start().await;
    let answer = token_answer(&github, "another-verifier-of-forty-three-characters-x").await;
    assert_eq!(
        members(&answer),
        BTreeSet::from(["error", "error_description", "error_uri"])
    );
    assert_eq!(answer["error"], "bad_verification_code");
    assert!(github.tokens().is_empty());
}
