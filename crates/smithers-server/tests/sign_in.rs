//! Signing in from a browser on both backends: a one-time link sets the
//! session cookie (`__Host-`, Secure, HttpOnly, SameSite) once; the
//! cookie reaches the API; a change from another site is refused whatever
//! it carries; signing out ends the session; every response carries the
//! strict security headers.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test's failure is a panic

mod common;

use reqwest::header::{COOKIE, HeaderMap, ORIGIN};
use smithers_api::Scope;
use smithers_app::Config;
use smithers_store::DEFAULT_ORGANIZATION;
use smithers_test_support::on_both_backends;
use smithers_test_support::runs::waiting_on_approval;

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

on_both_backends!(
    a_link_signs_in_once_and_the_session_is_same_origin_only,
    |db| {
        let s = common::serve(db, Config::default()).await;
        let http = no_redirects();
        let token = s
            .app
            .local_sign_in_token(DEFAULT_ORGANIZATION, "admin")
            .await
            .unwrap();
        let link = format!("{}/sign-in/local?token={token}", s.base);

        let answer = http.get(&link).send().await.unwrap();
        assert_eq!(answer.status(), 303);
        assert_eq!(answer.headers()["location"], "/");
        let set = answer.headers()["set-cookie"].to_str().unwrap().to_string();
        let (pair, attributes) = set.split_once(';').unwrap();
        let (name, secret) = pair.split_once('=').unwrap();
        assert_eq!(name, smithers_server::SESSION_COOKIE);
        assert!(secret.starts_with(smithers_app::SESSION_PREFIX), "{set}");
        for attribute in [
            "HttpOnly",
            "SameSite=Lax",
            "Secure",
            "Path=/",
            "Max-Age=43200",
        ] {
            assert!(attributes.contains(attribute), "{set}");
        }
        assert!(!attributes.contains("Domain"), "{set}");

        // Used once: the second time is a page saying so.
        let again = http.get(&link).send().await.unwrap();
        assert_eq!(again.status(), 401);
        assert!(
            again.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert!(again.text().await.unwrap().contains("was used already"));

        let cookie = format!("{}={secret}", smithers_server::SESSION_COOKIE);
        let with = |extra: &[(&str, &str)]| {
            let mut headers = HeaderMap::new();
            headers.insert(COOKIE, cookie.parse().unwrap());
            for (k, v) in extra {
                headers.insert(
                    reqwest::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    v.parse().unwrap(),
                );
            }
            headers
        };
        // The cookie reaches the API.
        let runs = http
            .get(format!("{}/api/v1/runs", s.base))
            .headers(with(&[]))
            .send()
            .await
            .unwrap();
        assert_eq!(runs.status(), 200);
        for (name, value) in [
            (
                "content-security-policy",
                smithers_server::CONTENT_SECURITY_POLICY,
            ),
            ("x-content-type-options", "nosniff"),
            ("referrer-policy", "no-referrer"),
            ("cache-control", "no-store"),
        ] {
            assert_eq!(runs.headers()[name], value, "{name}");
        }

        // A change is refused unless it comes from this server's own pages.
        let approval = waiting_on_approval(&s.app.engine().runs, "admin", false).await;
        let admin = common::principal(&s.app, "admin").await;
        let run = s.app.approvals().show(&admin, &approval).await.unwrap().run;
        let cancel = format!("{}/api/v1/runs/{run}/cancel", s.base);
        let host = s.base.trim_start_matches("http://").to_string();
        let refused: [&[(&str, &str)]; 5] = [
            &[],
            &[("sec-fetch-site", "cross-site")],
            &[("sec-fetch-site", "same-site")],
            &[("origin", "http://evil.example")],
            &[("origin", "null")],
        ];
        for extra in refused {
            let answer = http
                .post(&cancel)
                .headers(with(extra))
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 403, "{extra:?}");
            assert_eq!(
                answer.headers()["content-type"],
                smithers_server::PROBLEM_JSON
            );
        }
        let origin = format!("http://{host}");
        let same = http
            .post(&cancel)
            .headers(with(&[("origin", origin.as_str())]))
            .send()
            .await
            .unwrap();
        assert_eq!(same.status(), 200, "{}", same.text().await.unwrap());
        // Reading needs no such proof; a token needs none either (a script
        // sends it on purpose; a browser never sends it by itself).
        let reader = common::token(&s.app, "admin", &[Scope::RunsRead, Scope::RunsWrite]).await;
        let answer = http
            .post(format!("{}/api/v1/runs/{run}/cancel", s.base))
            .bearer_auth(&reader)
            .header(ORIGIN, "http://evil.example")
            .send()
            .await
            .unwrap();
        assert_eq!(
            answer.status(),
            409,
            "a token's request is judged on its own"
        );

        // Signing out: same-origin only, then the cookie is gone and refused.
        let out = format!("{}/sign-out", s.base);
        let answer = http
            .post(&out)
            .headers(with(&[("sec-fetch-site", "cross-site")]))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 403);
        let answer = http
            .post(&out)
            .headers(with(&[("sec-fetch-site", "same-origin")]))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 303);
        assert_eq!(answer.headers()["location"], "/sign-in");
        let cleared = answer.headers()["set-cookie"].to_str().unwrap();
        assert!(
            cleared.starts_with(&format!("{}=;", smithers_server::SESSION_COOKIE)),
            "{cleared}"
        );
        assert!(cleared.contains("Max-Age=0"), "{cleared}");
        let after = http
            .get(format!("{}/api/v1/runs", s.base))
            .headers(with(&[]))
            .send()
            .await
            .unwrap();
        assert_eq!(after.status(), 401);

        // Nothing but a live session's cookie counts.
        for value in ["", "sms_nothing", &token] {
            let answer = http
                .get(format!("{}/api/v1/runs", s.base))
                .header(
                    COOKIE,
                    format!("{}={value}", smithers_server::SESSION_COOKIE),
                )
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 401, "{value}");
        }
    }
);
