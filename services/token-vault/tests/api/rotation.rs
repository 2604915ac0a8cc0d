use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicUsize, Ordering},
};

use scifer_proto::tokenvault::v1::{
    GetRotationStatusRequest, RotateDataKeyRequest, egress_response::Outcome,
};
use scifer_test_support::wait_until;
use tonic::Code;

use crate::helpers::*;

#[tokio::test]
async fn data_key_rotation_under_load_leaves_no_token_on_the_old_version_and_no_call_fails() {
    let vault = TestVault::start().await;
    let page = vault.connect_demo_page().await.channels[0].clone();
    vault.connect_whatsapp(WORKSPACE).await;
    let store = vault.store().await;
    assert_eq!(count_rows(&store, "tokens", "data_key_version", "1").await, 3);

    // Keep sending while the rotation runs.
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let mut client = vault.client("inbox").await;
    let load = {
        let (stop, ok, channel_id) = (stop.clone(), ok.clone(), page.channel_id.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let r = client
                    .egress(crate::egress::send_request(&channel_id))
                    .await
                    .unwrap()
                    .into_inner();
                assert!(matches!(r.outcome, Some(Outcome::ResultJson(_))), "{r:?}");
                ok.fetch_add(1, Ordering::Relaxed);
            }
        })
    };

    let mut operator = vault.client("operator").await;
    let status = operator
        .rotate_data_key(RotateDataKeyRequest {
            workspace_id: WORKSPACE.into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.tokens_on_old_data_key, 3, "nothing moved yet");
    let done = wait_until(WAIT, || {
        let mut op = operator.clone();
        async move {
            let s = op
                .get_rotation_status(GetRotationStatusRequest {})
                .await
                .unwrap()
                .into_inner();
            s.tokens_on_old_data_key == 0
        }
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    assert!(done.is_ok(), "rotation did not finish");
    assert!(ok.load(Ordering::Relaxed) > 0);
    assert_eq!(count_rows(&store, "tokens", "data_key_version", "2").await, 3);
    // The old data key is retired once nothing uses it.
    wait_until(WAIT, || {
        let store = store.clone();
        async move { count_rows(&store, "data_keys", "version", "1").await == 0 }
    })
    .await
    .expect("old data key retired");
    vault.wait_audit("keys.rotated", 1).await;
    // Only operators rotate keys.
    let err = vault
        .client("gateway")
        .await
        .rotate_data_key(RotateDataKeyRequest {
            workspace_id: WORKSPACE.into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn a_new_kek_is_promoted_everything_is_rewrapped_and_the_old_kek_can_be_retired() {
    let mut vault = TestVault::start().await;
    let page = vault.connect_demo_page().await.channels[0].clone();
    // Add KEK 2 and make it primary.
    vault.launch(&format!("1:{},2:{}", kek(1), kek(2)), Some(2)).await;
    let mut operator = vault.client("operator").await;
    wait_until(WAIT, || {
        let mut op = operator.clone();
        async move {
            let s = op
                .get_rotation_status(GetRotationStatusRequest {})
                .await
                .unwrap()
                .into_inner();
            s.data_keys_on_old_kek == 0 && s.kek_versions_in_use == vec![2]
        }
    })
    .await
    .expect("data keys re-wrapped under KEK 2");
    let status = operator
        .get_rotation_status(GetRotationStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.primary_kek_version, 2);

    // KEK 1 removed from the configuration: tokens still open.
    vault.launch(&format!("2:{}", kek(2)), None).await;
    let r = crate::egress::send_text(&vault, &page.channel_id).await.unwrap();
    assert!(matches!(r.outcome, Some(Outcome::ResultJson(_))), "{r:?}");
}
