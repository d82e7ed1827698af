//! `groundwork-s3` against moto: what the Lambdas rely on, over real HTTP.

use groundwork::S3Uri;
use groundwork::ports::{
    ConditionalPut, Encryption, ObjectLister, ObjectReader, ObjectWriter, StoreError,
    VersionedStore,
};
use groundwork_s3::S3Store;

use crate::util::{Moto, put};

fn uri(s: &str) -> S3Uri {
    s.parse().expect("test URI")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_writes_lists_and_maps_errors() {
    let moto = Moto::start();
    let s3 = moto.s3();
    put(
        &s3,
        "gw-adapter",
        &[
            ("in/a.json", b"[1]".to_vec()),
            ("in/b/c.json", b"{}".to_vec()),
        ],
    )
    .await;
    let store = S3Store::new(s3);

    assert_eq!(
        store
            .get_object(&uri("s3://gw-adapter/in/a.json"))
            .await
            .unwrap(),
        b"[1]"
    );
    store
        .put_object(
            &uri("s3://gw-adapter/out/x:y 1.png"),
            vec![1, 2, 3],
            "image/png",
            &Encryption::BucketDefault,
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .get_object(&uri("s3://gw-adapter/out/x:y 1.png"))
            .await
            .unwrap(),
        [1, 2, 3]
    );

    let listed = store
        .list_objects(&uri("s3://gw-adapter/in/"))
        .await
        .unwrap();
    let keys: Vec<_> = listed.iter().map(|u| u.key().to_owned()).collect();
    assert_eq!(keys, ["in/a.json", "in/b/c.json"]);

    let missing = store
        .get_object(&uri("s3://gw-adapter/nope.json"))
        .await
        .unwrap_err();
    assert!(
        matches!(missing, StoreError::NotFound { .. }),
        "{missing:?}"
    );
    let no_bucket = store
        .get_object(&uri("s3://gw-no-such-bucket/k"))
        .await
        .unwrap_err();
    assert!(
        matches!(no_bucket, StoreError::NotFound { .. }),
        "{no_bucket:?}"
    );

    let big = store.clone().with_max_object_bytes(2);
    assert!(matches!(
        big.get_object(&uri("s3://gw-adapter/in/a.json")).await,
        Err(StoreError::TooLarge { bytes: 3, .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_writes_detect_a_lost_race() {
    let moto = Moto::start();
    put(&moto.s3(), "gw-cond", &[]).await;
    let store = S3Store::new(moto.s3());
    let state = uri("s3://gw-cond/state.json");

    assert_eq!(store.get_versioned(&state).await.unwrap(), None);
    let ConditionalPut::Written { etag: first } = store
        .put_if_match(&state, b"v1".to_vec(), None, &Encryption::BucketDefault)
        .await
        .unwrap()
    else {
        panic!("first write must succeed");
    };
    // A second "first write" loses: the object exists now.
    assert_eq!(
        store
            .put_if_match(&state, b"other".to_vec(), None, &Encryption::BucketDefault)
            .await
            .unwrap(),
        ConditionalPut::Conflict
    );
    // An update against the ETag read succeeds once; the stale ETag then loses.
    assert!(matches!(
        store
            .put_if_match(
                &state,
                b"v2".to_vec(),
                Some(&first),
                &Encryption::BucketDefault
            )
            .await
            .unwrap(),
        ConditionalPut::Written { .. }
    ));
    assert_eq!(
        store
            .put_if_match(
                &state,
                b"v3".to_vec(),
                Some(&first),
                &Encryption::BucketDefault
            )
            .await
            .unwrap(),
        ConditionalPut::Conflict
    );
    let current = store.get_versioned(&state).await.unwrap().unwrap();
    assert_eq!(current.body, b"v2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_endpoint_is_retryable() {
    // Nothing listens on this port: the adapter must call it transient, not "not found".
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "t", "t", None, None, "static",
        ))
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .force_path_style(true)
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
        .build();
    let store = S3Store::new(aws_sdk_s3::Client::from_conf(conf));
    let err = store.get_object(&uri("s3://gw-any/k")).await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_ask_for_sse_kms_with_the_jobs_key() {
    let moto = Moto::start();
    let s3 = moto.s3();
    put(&s3, "gw-kms", &[("seed", b"".to_vec())]).await;
    let store = S3Store::new(s3.clone());
    let key = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let kms = Encryption::Kms {
        key_id: key.to_owned(),
    };
    store
        .put_object(&uri("s3://gw-kms/mask.png"), vec![1], "image/png", &kms)
        .await
        .unwrap();
    store
        .put_if_match(&uri("s3://gw-kms/quality.json"), b"{}".to_vec(), None, &kms)
        .await
        .unwrap();
    store
        .put_object(
            &uri("s3://gw-kms/plain.png"),
            vec![1],
            "image/png",
            &Encryption::BucketDefault,
        )
        .await
        .unwrap();
    for object in ["mask.png", "quality.json"] {
        let head = s3
            .head_object()
            .bucket("gw-kms")
            .key(object)
            .send()
            .await
            .unwrap();
        assert_eq!(
            head.server_side_encryption().map(|e| e.as_str()),
            Some("aws:kms"),
            "{object}"
        );
        assert_eq!(head.ssekms_key_id(), Some(key), "{object}");
    }
    let plain = s3
        .head_object()
        .bucket("gw-kms")
        .key("plain.png")
        .send()
        .await
        .unwrap();
    assert_eq!(plain.ssekms_key_id(), None);
}
