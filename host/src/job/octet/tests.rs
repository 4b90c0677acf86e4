use copra_codes::ErrorCode;
use serde_json::{Value, json};

use super::view::output_status;
use super::*;
use crate::db::{job, output};
use crate::job::JobSpec;
use crate::job::status::{InputStatus, JobStatus, OutputState, OutputType};

fn test_sealer() -> crate::secret::Sealer {
    crate::secret::Sealer::new(&[7; 32])
}

fn request(outputs: Value) -> Value {
    json!({
        "input": {"url": "https://example.com/in.mp4"},
        "destination": {
            "provider": "s3", "region": "us-east-1", "bucket": "b",
            "creds": {"access_key_id": "AK", "secret_access_key": "SK"}
        },
        "outputs": outputs,
        "callback": "https://hooks.example.com/octet"
    })
}

fn job(body: &Value) -> Result<JobSpec, JobError> {
    to_job(&parse(body.to_string().as_bytes())?)
}

fn format_of(output: Value) -> Result<String, JobError> {
    let mut base = json!({"codec": "h264", "resolution": "1280x720", "dest_path": "a.mp4"});
    for (k, v) in output.as_object().unwrap() {
        base[k] = v.clone();
    }
    job(&request(json!([base]))).map(|spec| spec.outputs[0].format.clone())
}

#[test]
fn every_control_lands_in_the_format_string() {
    let format = format_of(json!({
        "resolution": "1280x-1", "bitrate_kbps": 2000, "preset": "fast", "profile": "high", "level": "4.1",
        "rc": "vbr", "coder": "cabac", "cq": 23, "scale_interp_algo": "lanczos"
    }))
    .unwrap();
    assert_eq!(format, "mp4:h264_1280x_2000k:none:preset=fast,profile=high,level=4.1,rc=vbr,coder=cabac,cq=23,scale=lanczos");
    let format = format_of(json!({"codec": "hevc", "resolution": "-1x360", "rc": "constqp", "qp": 30})).unwrap();
    assert_eq!(format, "mp4:hevc_x360:none:rc=constqp,qp=30");
}

#[test]
fn resolutions() {
    assert_eq!(format_of(json!({"resolution": "1920x1080"})).unwrap(), "mp4:h264_1920x1080:none:fit=stretch");
    assert_eq!(format_of(json!({"resolution": "-1x1080"})).unwrap(), "mp4:h264_x1080:none:");
    assert_eq!(format_of(json!({"resolution": "1280x-1"})).unwrap(), "mp4:h264_1280x:none:");
    for bad in ["-1x-1", "1280", "1280x", "x720", "0x720", "1x720", "9000x720", "axb", "1280x720x3", "-2x720", ""] {
        let err = format_of(json!({"resolution": bad})).unwrap_err();
        assert_eq!(err.code(), ErrorCode::OutputParamNotValid, "{bad}");
        assert!(err.to_string().starts_with("outputs[0].resolution"), "{bad}: {err}");
    }
}

#[test]
fn levels_as_strings_or_numbers() {
    for (level, expected) in [
        (json!("auto"), "level=auto"),
        (json!("4.0"), "level=4"),
        (json!(4), "level=4"),
        (json!(4.0), "level=4"),
        (json!(4.2), "level=4.2"),
        (json!("5.0"), "level=5"),
        (json!(5.1), "level=5.1"),
    ] {
        let format = format_of(json!({"level": level})).unwrap();
        assert!(format.ends_with(&format!(":{expected},fit=stretch")), "{level}: {format}");
    }
    for bad in [json!("3.1"), json!(6), json!(4.3), json!(true)] {
        let err = format_of(json!({"level": bad})).unwrap_err();
        assert!(err.to_string().starts_with("outputs[0].level: "), "{bad}: {err}");
    }
}

#[test]
fn rate_control_combinations() {
    let ok = |o: Value| format_of(o).unwrap();
    // vbr with a target quality and no bitrate is constant quality at that cq.
    assert!(ok(json!({"rc": "vbr_hq", "cq": 20})).ends_with(":cq=20,fit=stretch"));
    assert!(ok(json!({"rc": "cbr_hq", "bitrate_kbps": 3000})).contains("_3000k:none:rc=cbr_hq"));
    // qp alone is constqp; qp -1 is Octet's automatic and is left out.
    assert!(ok(json!({"qp": 28})).ends_with(":qp=28,fit=stretch"));
    assert!(ok(json!({"rc": "vbr", "bitrate_kbps": 1000, "qp": -1})).ends_with(":rc=vbr,fit=stretch"));
    for (bad, needle) in [
        (json!({"rc": "cbr"}), "rc 'cbr' needs bitrate_kbps"),
        (json!({"rc": "vbr"}), "rc 'vbr' needs bitrate_kbps"),
        (json!({"rc": "constqp", "bitrate_kbps": 1000}), "takes no bitrate_kbps or cq"),
        (json!({"qp": 20, "cq": 20}), "takes no bitrate_kbps or cq"),
        (json!({"rc": "vbr", "bitrate_kbps": 1000, "qp": 20}), "qp applies to rc 'constqp'"),
        (json!({"rc": "cbr", "bitrate_kbps": 1000, "cq": 20}), "cbr takes none"),
        (json!({"cq": 52}), "cq 52 must be 0 to 51"),
        (json!({"qp": -2}), "qp -2 must be -1 to 51"),
        (json!({"bitrate_kbps": 0}), "bitrate_kbps 0"),
    ] {
        let err = format_of(bad.clone()).unwrap_err();
        assert!(err.to_string().contains(needle), "{bad}: {err}");
        assert!(err.to_string().starts_with("outputs[0]."), "{bad}: {err}");
    }
}

#[test]
fn closed_vocabularies_name_the_field() {
    for (field, value) in [
        ("codec", "vp9"),
        ("preset", "placebo"),
        ("profile", "high10"),
        ("rc", "crf"),
        ("coder", "ac"),
        ("scale_interp_algo", "spline"),
    ] {
        let err = format_of(json!({ field: value })).unwrap_err();
        assert_eq!(err.code(), ErrorCode::RequestNotValid);
        let message = err.to_string();
        assert!(message.starts_with(&format!("outputs[0].{field}: unknown variant `{value}`")), "{message}");
        assert!(!message.contains(" at line "), "no JSON positions: {message}");
    }
    for preset in ["slow", "medium", "fast", "hp", "hq", "ll", "llhq", "llhp"] {
        assert!(format_of(json!({"preset": preset})).unwrap().contains(&format!("preset={preset}")));
    }
}

#[test]
fn structure_errors() {
    let mut body = request(json!([{"codec": "h264", "resolution": "1280x720", "dest_path": "a.mp4"}]));
    assert!(job(&body).is_ok());
    body.as_object_mut().unwrap().remove("input");
    assert_eq!(job(&body).unwrap_err().to_string(), "missing field `input`.");
    let body = json!({"input": {}, "destination": {}, "outputs": []});
    assert_eq!(job(&body).unwrap_err().to_string(), "input: missing field `url`.");
    let mut body = request(json!([]));
    assert_eq!(job(&body).unwrap_err().code(), ErrorCode::OutputsNotValid);
    body["extra"] = json!(1);
    assert!(job(&body).unwrap_err().to_string().starts_with("unknown field `extra`"));
    let body = request(json!([{"codec": "h264", "resolution": "1280x720", "dest_path": "a.mp4", "audio": true}]));
    assert!(job(&body).unwrap_err().to_string().starts_with("outputs[0]: unknown field `audio`"));
    let mut body = request(json!([{"codec": "h264", "resolution": "1280x720", "dest_path": "a.mp4"}]));
    body["destination"]["provider"] = json!("gcs");
    assert!(job(&body).unwrap_err().to_string().starts_with("destination.provider: unknown variant `gcs`"));
    assert!(parse(b"{not json").unwrap_err().to_string().starts_with("The request body is not valid JSON"));
    assert!(parse(b"{} {}").is_err(), "trailing data");
}

#[test]
fn input_callback_and_paths_are_checked() {
    let one = json!([{"codec": "h264", "resolution": "1280x720", "dest_path": "a.mp4"}]);
    let mut body = request(one.clone());
    body["input"]["url"] = json!("ftp://example.com/in.mp4");
    assert_eq!(job(&body).unwrap_err().code(), ErrorCode::InputNotValid);
    let mut body = request(one);
    body["callback"] = json!("not a url");
    assert_eq!(job(&body).unwrap_err().code(), ErrorCode::NotificationNotValid);
    let two = json!([
        {"codec": "h264", "resolution": "1280x720", "dest_path": "same.mp4"},
        {"codec": "h264", "resolution": "640x360", "dest_path": "same.mp4"}
    ]);
    assert!(job(&request(two)).unwrap_err().to_string().contains("outputs[1].dest_path 'same.mp4' is also the dest_path of outputs[0]"));
    let empty = json!([{"codec": "h264", "resolution": "1280x720", "dest_path": " "}]);
    assert!(job(&request(empty)).unwrap_err().to_string().contains("dest_path must not be empty"));
}

#[test]
fn the_job_copra_runs() {
    let mut body = request(json!([
        {"codec": "h264", "resolution": "1280x-1", "dest_path": "full/path/vid_720.mp4", "bitrate_kbps": 2000},
        {"codec": "h264", "resolution": "-1x360", "dest_path": "/full/path/vid_360.mp4"}
    ]));
    body["destination"]["region"] = json!("eu-west-1");
    body["destination"]["endpoint"] = json!("http://127.0.0.1:9000");
    let spec = job(&body).unwrap();
    assert_eq!(spec.input.url.as_deref(), Some("https://example.com/in.mp4"));
    assert_eq!(
        spec.storage,
        json!({"service": "s3", "region": "eu-west-1", "bucket": "b", "endpoint": "http://127.0.0.1:9000",
               "credentials": {"access_key_id": "AK", "secret_access_key": "SK"}})
    );
    let keys: Vec<_> = spec.outputs.iter().map(|o| (o.key.as_str(), o.path.as_deref())).collect();
    assert_eq!(keys, [("0", Some("full/path/vid_720.mp4")), ("1", Some("/full/path/vid_360.mp4"))]);
    assert_eq!(spec.outputs[0].plugin_params(), "{}", "the format plugin gets no stray params");
    assert_eq!(spec.notification, Some(json!({"type": "http", "url": "https://hooks.example.com/octet", "api": "octet_v0"})));
    // No region: Octet's only one.
    body["destination"].as_object_mut().unwrap().remove("region");
    assert_eq!(job(&body).unwrap().storage["region"], "us-east-1");
    body.as_object_mut().unwrap().remove("callback");
    assert!(job(&body).unwrap().notification.is_none());
}

#[test]
fn secrets_stay_out_of_debug() {
    let creds = Creds { access_key_id: "AK".into(), secret_access_key: "very-secret".into() };
    assert!(!format!("{creds:?}").contains("very-secret"));
}

fn rows(status: JobStatus, input_status: InputStatus, lease: Option<&str>) -> (job::Model, Vec<output::Model>) {
    let spec = job(&request(json!([
        {"codec": "h264", "resolution": "1280x-1", "dest_path": "a/720.mp4"},
        {"codec": "h264", "resolution": "-1x360", "dest_path": "a/360.mp4"}
    ])))
    .unwrap();
    let job = job::Model {
        id: "J1".into(),
        owner: "o".into(),
        status,
        input_status,
        progress: 40,
        spec: crate::job::stored::seal_spec(&test_sealer(), &spec).unwrap(),
        input_metadata: None,
        error: None,
        created_at: 1_700_000_000_000,
        completed_at: None,
        lease_owner: lease.map(str::to_string),
        lease_expires_at: None,
        attempts: 0,
    };
    let output = |position: i32, state: OutputState| output::Model {
        id: i64::from(position),
        state,
        ..output::Model::waiting("J1", position, position.to_string(), &spec.outputs[position as usize].format, OutputType::Video)
    };
    (job, vec![output(0, OutputState::Working), output(1, OutputState::Waiting)])
}

#[test]
fn status_view() {
    let (job, outputs) = rows(JobStatus::Starting, InputStatus::Starting, None);
    let view = job_view(&job, &outputs, &test_sealer());
    assert_eq!(view["job_id"], "J1");
    assert_eq!(view["status"], "pending");
    assert_eq!(view["created_at"], "2023-11-14T22:13:20Z");
    assert_eq!(view["completed_at"], Value::Null);
    assert_eq!(view["outputs"][0], json!({"dest_path": "a/720.mp4", "status": "processing"}));
    assert_eq!(view["outputs"][1], json!({"dest_path": "a/360.mp4", "status": "pending"}));
    let (job, _) = rows(JobStatus::Starting, InputStatus::Starting, Some("worker-1"));
    assert_eq!(job_view(&job, &outputs, &test_sealer())["status"], "processing");
    let (job, _) = rows(JobStatus::Starting, InputStatus::Transferred, None);
    assert_eq!(job_view(&job, &outputs, &test_sealer())["status"], "processing");
    let (job, _) = rows(JobStatus::Completed, InputStatus::Transferred, None);
    assert_eq!(job_view(&job, &outputs, &test_sealer())["status"], "complete");
    assert!(job_view(&job, &outputs, &test_sealer()).get("error").is_none());
    let (mut job, mut outputs) = rows(JobStatus::Failed, InputStatus::Failed, None);
    outputs[1].state = OutputState::Failed;
    outputs[1].error = Some("Encoding failed: boom".into());
    let view = job_view(&job, &outputs, &test_sealer());
    assert_eq!((view["status"].as_str(), view["error"].as_str()), (Some("error"), Some("Encoding failed: boom")));
    assert_eq!(view["outputs"][1]["status"], "error");
    job.error = Some("The input could not be fetched".into());
    assert_eq!(job_view(&job, &outputs, &test_sealer())["error"], "The input could not be fetched");
}

#[test]
fn output_statuses() {
    for (state, octet) in [
        (OutputState::Waiting, "pending"),
        (OutputState::Queued, "processing"),
        (OutputState::Working, "processing"),
        (OutputState::Packaging, "processing"),
        (OutputState::Done, "complete"),
        (OutputState::Failed, "error"),
        (OutputState::Skipped, "skipped"),
    ] {
        assert_eq!(output_status(state), octet, "{state:?}");
    }
}
