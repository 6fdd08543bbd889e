//! Config changes through librdkafka's C API: [`librdkafka_alter`] runs `rd_kafka_AlterConfigs`
//! or `rd_kafka_IncrementalAlterConfigs` on one resource and reports its error, which the
//! `rdkafka` crate's wrappers drop.

use rdkafka::bindings as rd;

use super::client::admin;

/// What librdkafka reports for one altered resource: its error code (0 for none) and message.
#[derive(Debug, PartialEq)]
pub struct Altered {
    pub code: i32,
    pub message: String,
}

impl Altered {
    pub fn ok() -> Altered {
        Altered {
            code: 0,
            message: String::new(),
        }
    }
}

/// One config change as librdkafka takes it: name, operation (ignored by the legacy call) and
/// value.
pub type Change<'a> = (&'a str, rd::rd_kafka_AlterConfigOpType_t, Option<&'a str>);

pub const SET: rd::rd_kafka_AlterConfigOpType_t =
    rd::rd_kafka_AlterConfigOpType_t::RD_KAFKA_ALTER_CONFIG_OP_TYPE_SET;
pub const DELETE: rd::rd_kafka_AlterConfigOpType_t =
    rd::rd_kafka_AlterConfigOpType_t::RD_KAFKA_ALTER_CONFIG_OP_TYPE_DELETE;
pub const APPEND: rd::rd_kafka_AlterConfigOpType_t =
    rd::rd_kafka_AlterConfigOpType_t::RD_KAFKA_ALTER_CONFIG_OP_TYPE_APPEND;
pub const SUBTRACT: rd::rd_kafka_AlterConfigOpType_t =
    rd::rd_kafka_AlterConfigOpType_t::RD_KAFKA_ALTER_CONFIG_OP_TYPE_SUBTRACT;

/// `rd_kafka_AlterConfigs` (or, with `incremental`, `rd_kafka_IncrementalAlterConfigs`) of one
/// resource through librdkafka's C API: the Rust crate's wrapper drops per-resource errors.
pub fn librdkafka_alter(
    bootstrap: &str,
    incremental: bool,
    resource: rd::rd_kafka_ResourceType_t,
    name: &str,
    changes: &[Change<'_>],
    validate_only: bool,
) -> Altered {
    use std::ffi::{CStr, CString};
    let admin = admin(bootstrap);
    let rk = admin.inner().native_ptr();
    let name = CString::new(name).unwrap();
    // SAFETY: every pointer comes from librdkafka for this client and is released below after
    // its last use; strings are copied out before the event is destroyed.
    unsafe {
        let queue = rd::rd_kafka_queue_new(rk);
        let op = if incremental {
            rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_INCREMENTALALTERCONFIGS
        } else {
            rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_ALTERCONFIGS
        };
        let options = rd::rd_kafka_AdminOptions_new(rk, op);
        if validate_only {
            let mut errstr = [0 as std::ffi::c_char; 256];
            let err = rd::rd_kafka_AdminOptions_set_validate_only(
                options,
                1,
                errstr.as_mut_ptr(),
                errstr.len(),
            );
            assert_eq!(err, rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR);
        }
        let mut config = rd::rd_kafka_ConfigResource_new(resource, name.as_ptr());
        // librdkafka refuses some names (an empty one) with NULL; using that would crash.
        assert!(
            !config.is_null(),
            "librdkafka refused the resource {name:?}"
        );
        let strings: Vec<(CString, Option<CString>)> = changes
            .iter()
            .map(|(k, _, v)| {
                (
                    CString::new(*k).unwrap(),
                    v.map(|v| CString::new(v).unwrap()),
                )
            })
            .collect();
        for ((key, value), (_, op, _)) in strings.iter().zip(changes) {
            let value = value.as_ref().map_or(std::ptr::null(), |v| v.as_ptr());
            if incremental {
                let error = rd::rd_kafka_ConfigResource_add_incremental_config(
                    config,
                    key.as_ptr(),
                    *op,
                    value,
                );
                assert!(error.is_null(), "librdkafka refused the change locally");
            } else {
                rd::rd_kafka_ConfigResource_set_config(config, key.as_ptr(), value);
            }
        }
        if incremental {
            rd::rd_kafka_IncrementalAlterConfigs(rk, &mut config, 1, options, queue);
        } else {
            rd::rd_kafka_AlterConfigs(rk, &mut config, 1, options, queue);
        }
        let event = rd::rd_kafka_queue_poll(queue, 15_000);
        assert!(!event.is_null(), "no AlterConfigs result within 15 s");
        let request_error = rd::rd_kafka_event_error(event);
        let altered = if request_error != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            let message = rd::rd_kafka_event_error_string(event);
            Altered {
                code: request_error as i32,
                message: CStr::from_ptr(message).to_string_lossy().into_owned(),
            }
        } else {
            let mut count = 0;
            let resources = if incremental {
                let result = rd::rd_kafka_event_IncrementalAlterConfigs_result(event);
                rd::rd_kafka_IncrementalAlterConfigs_result_resources(result, &mut count)
            } else {
                let result = rd::rd_kafka_event_AlterConfigs_result(event);
                rd::rd_kafka_AlterConfigs_result_resources(result, &mut count)
            };
            assert_eq!(count, 1);
            let resource = *resources;
            let code = rd::rd_kafka_ConfigResource_error(resource) as i32;
            let message = rd::rd_kafka_ConfigResource_error_string(resource);
            Altered {
                code,
                message: if message.is_null() {
                    String::new()
                } else {
                    CStr::from_ptr(message).to_string_lossy().into_owned()
                },
            }
        };
        rd::rd_kafka_event_destroy(event);
        rd::rd_kafka_ConfigResource_destroy(config);
        rd::rd_kafka_AdminOptions_destroy(options);
        rd::rd_kafka_queue_destroy(queue);
        altered
    }
}

pub const TOPIC_RESOURCE: rd::rd_kafka_ResourceType_t =
    rd::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_TOPIC;
pub const BROKER_RESOURCE: rd::rd_kafka_ResourceType_t =
    rd::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_BROKER;
