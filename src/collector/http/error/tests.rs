use super::*;

#[test]
fn errors_map_to_status_body_and_headers() {
    let inv = ApiError::Invalid(Invalid {
        path: "records[3].at".into(),
        message: "out of range".into(),
    });
    assert_eq!(inv.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        serde_json::to_value(inv.body()).unwrap(),
        serde_json::json!({"error": "out of range", "field": "records[3].at"})
    );
    let wrong = ApiError::WrongDevice {
        token_device: "gw1".into(),
    };
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    assert_eq!(wrong.body().error, "this token belongs to device gw1");
    assert_eq!(wrong.body().field, None);
    assert_eq!(ApiError::Revoked.body().error, "token revoked");
    assert_eq!(ApiError::Revoked.status(), StatusCode::FORBIDDEN);
    let o = ApiError::Overloaded;
    assert_eq!(o.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        o.headers(),
        vec![(header::RETRY_AFTER, HeaderValue::from(1))]
    );
    assert_eq!(
        ApiError::Unavailable.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(ApiError::Unavailable.headers()[0].0, header::RETRY_AFTER);
    assert_eq!(
        ApiError::TooLarge("x".into()).status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert!(
        ApiError::UnknownToken.headers()[0]
            .1
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    let busy = ApiError::DeviceBusy { max: 2 };
    assert_eq!(busy.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        busy.headers(),
        vec![(
            header::RETRY_AFTER,
            HeaderValue::from(RETRY_AFTER_DEVICE_BUSY)
        )]
    );
    assert!(busy.body().error.contains("at most 2"), "{:?}", busy.body());
    let slow = ApiError::Timeout("slower than 1024 bytes/s".into());
    assert_eq!(slow.status(), StatusCode::REQUEST_TIMEOUT);
    assert_eq!(slow.body().error, "slower than 1024 bytes/s");
    let r = ApiError::Overloaded.into_response();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()[header::RETRY_AFTER], "1");
    assert!(
        r.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
}

#[test]
fn errors_map_to_status_and_headers() {
    let r = ReadError::MissingToken("missing".into()).into_response();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().contains_key(header::WWW_AUTHENTICATE));
    assert_eq!(
        ReadError::InvalidToken("token revoked").status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(ReadError::DeviceToken.status(), StatusCode::FORBIDDEN);
    assert_eq!(ReadError::NotAdmin.status(), StatusCode::FORBIDDEN);
    let p = ReadError::Param(ParamError {
        field: "limit",
        message: "bad".into(),
    });
    assert_eq!(p.status(), StatusCode::BAD_REQUEST);
    assert_eq!(p.body().field.as_deref(), Some("limit"));
}
