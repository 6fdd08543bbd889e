//! Unit tests: the oracle, the seeds, the script format, the decoder's header remapping.

use crate::coordinator::script::Script;
use crate::oracle::{self, bound, measure};
use crate::request_decoder::served_variant;
use crate::{seeds, Target};

#[test]
fn the_counting_allocator_is_installed_in_the_test_binary() {
    assert!(oracle::is_installed());
}

#[test]
fn an_allocation_above_the_limit_is_refused_and_reported() {
    let (result, usage) = measure(&[], 4096, || {
        Vec::<u8>::new().try_reserve_exact(1 << 20).is_ok()
    });
    assert!(!result, "the allocation must fail");
    assert_eq!(usage.refused, Some(1 << 20));
    assert_eq!(usage.largest, 1 << 20);
}

#[test]
fn allocations_within_the_limit_are_measured() {
    let (len, usage) = measure(&[], 1 << 20, || vec![0u8; 1000].len());
    assert_eq!(len, 1000);
    assert_eq!(usage.refused, None);
    assert!(usage.largest >= 1000);
}

#[test]
#[should_panic(expected = "exceeds the bound")]
fn check_fails_a_call_that_asked_for_too_much_even_if_it_coped() {
    let input = [0u8; 10];
    let _ = oracle::check(&input, || {
        Vec::<u8>::new()
            .try_reserve_exact(bound(input.len()) + 1)
            .is_ok()
    });
}

#[test]
fn the_watch_is_off_outside_a_call() {
    let _ = measure(&[], 16, || ());
    // Not armed any more: a large allocation goes through.
    assert_eq!(vec![1u8; 1 << 16].len(), 1 << 16);
}

#[test]
fn every_seed_runs_cleanly_under_the_oracle() {
    for target in Target::ALL {
        let seeds = seeds::for_target(target);
        assert!(!seeds.is_empty(), "{target:?} has no seeds");
        for (name, bytes) in seeds {
            let usage = target.run_checked(&bytes);
            assert!(usage.refused.is_none(), "{target:?} {name}");
        }
    }
}

#[test]
fn seeds_cover_every_served_api_and_version() {
    let names: Vec<String> = seeds::requests().into_iter().map(|(n, _)| n).collect();
    let versions: usize = starling_protocol::versions::all()
        .map(|(_, r)| (r.max - r.min + 1) as usize)
        .sum();
    assert!(
        names.len() >= versions,
        "{} seeds for {versions} versions",
        names.len()
    );
    assert!(names.contains(&"metadata-v13.bin".to_string()), "{names:?}");
    assert!(
        names.contains(&"offset_delete-v0.bin".to_string()),
        "{names:?}"
    );
}

#[test]
fn served_request_seeds_decode() {
    for (name, bytes) in seeds::requests() {
        let decoded = starling_protocol::request::decode(bytes.into());
        let refused = name.starts_with("produce-v0")
            || name.starts_with("produce-v1.")
            || name.starts_with("produce-v2.");
        if refused {
            assert!(decoded.is_err(), "{name}");
        } else {
            assert!(decoded.is_ok(), "{name}: {decoded:?}");
        }
    }
}

#[test]
fn batch_seeds_pass_validation_except_the_legacy_one() {
    for (name, bytes) in seeds::record_sets() {
        let result = starling_log::validate_record_set(&bytes, u32::MAX);
        if name == "legacy_v1_message" {
            assert!(
                matches!(result, Err(starling_log::AppendError::UnsupportedMagic(1))),
                "{result:?}"
            );
        } else {
            assert!(result.is_ok(), "{name}: {result:?}");
        }
    }
}

#[test]
fn scripts_read_back_as_written() {
    for (name, script) in seeds::scripts() {
        let bytes = script.to_bytes();
        assert_eq!(Script::read(&bytes), script, "{name}");
    }
}

#[test]
fn any_bytes_read_as_a_script() {
    let data: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    let script = Script::read(&data);
    assert!(!script.ops.is_empty());
    assert!(Script::read(&[]).ops.is_empty());
}

#[test]
fn unserved_headers_are_moved_onto_served_pairs_and_served_ones_are_left_alone() {
    // Metadata v1: served, left alone.
    assert_eq!(served_variant(&[0, 3, 0, 1, 0, 0, 0, 7]), None);
    // Too short for a header.
    assert_eq!(served_variant(&[0, 3, 0]), None);
    // Metadata v99: a served Metadata version.
    let frame = served_variant(&[0, 3, 0, 99, 0, 0, 0, 7, 0xab]).unwrap();
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    assert_eq!(&frame[..2], &[0, 3]);
    assert!((0..=13).contains(&version));
    assert_eq!(&frame[4..], &[0, 0, 0, 7, 0xab]);
    // An unknown key: some served API, at a served version that is not refused.
    let frame = served_variant(&[0x7f, 0x00, 0, 0, 0, 0, 0, 7]).unwrap();
    let prefix = starling_protocol::request::header_prefix(&frame).unwrap();
    let api = kafka_protocol::messages::ApiKey::try_from(prefix.api_key).unwrap();
    let range = starling_protocol::versions::supported(api).unwrap();
    assert!((range.min..=range.max).contains(&prefix.api_version));
    assert!(!starling_protocol::versions::is_refused_legacy(
        api,
        prefix.api_version
    ));
}

#[test]
fn the_coordinator_seeds_reach_a_stable_group_and_commit() {
    let summary = crate::coordinator::summarize(&seeds::for_target(Target::Coordinator)[0].1);
    assert!(summary.successful_syncs >= 1, "{summary:?}");
    assert!(summary.records >= 2, "{summary:?}");
}

#[test]
fn crc_fix_up_makes_a_mutated_batch_pass_the_crc_check_only() {
    let (_, mut batch) = seeds::record_sets().remove(0);
    assert!(
        !crate::record_batch::fix_crcs(&mut batch.clone()),
        "seeds carry right CRCs"
    );
    let last = batch.len() - 1;
    batch[last] ^= 0xff;
    assert!(starling_log::validate_record_set(&batch, u32::MAX).is_err());
    assert!(crate::record_batch::fix_crcs(&mut batch));
    // The CRC is right now; the flipped byte (the last header count) is still wrong.
    let err = starling_log::validate_record_set(&batch, u32::MAX).unwrap_err();
    assert!(!err.to_string().contains("crc"), "{err}");
    // Truncated and hostile lengths are left alone.
    assert!(!crate::record_batch::fix_crcs(&mut batch[..30].to_vec()));
    let mut huge = batch.clone();
    huge[8..12].copy_from_slice(&0x7fff_ffffu32.to_be_bytes());
    assert!(!crate::record_batch::fix_crcs(&mut huge));
}

#[test]
fn the_valid_scram_seeds_authenticate() {
    use starling_broker::sasl::scram::{ScramMechanism, ScramServer, ScramStep};
    for mechanism in [ScramMechanism::Sha256, ScramMechanism::Sha512] {
        let (first, last) = seeds::scram_exchange(mechanism);
        let credential = crate::authentication::scram_credential(mechanism);
        let mut server = ScramServer::with_server_nonce(mechanism, "fuzznonce");
        let step = server
            .evaluate(first.as_bytes(), |_| Some(credential))
            .unwrap();
        assert!(matches!(step, ScramStep::Challenge(_)), "{step:?}");
        match server.evaluate(last.as_bytes(), |_| None).unwrap() {
            ScramStep::Complete {
                authorization_id, ..
            } => assert_eq!(authorization_id, "user"),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn the_certificate_seed_is_the_same_bytes_every_time() {
    let a = seeds::authentication_inputs();
    let b = seeds::authentication_inputs();
    let cert = |inputs: &[(String, Vec<u8>)]| {
        inputs
            .iter()
            .find(|(n, _)| n == "certificate.bin")
            .unwrap()
            .1
            .clone()
    };
    assert_eq!(cert(&a), cert(&b));
    assert_eq!(
        starling_broker::ssl_principal::subject_name(&cert(&a)[1..]).unwrap(),
        r"CN=alice,OU=Apps,O=Acme\, Inc.,C=US"
    );
}
