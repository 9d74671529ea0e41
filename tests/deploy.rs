//! `deploy/kubernetes/`: every manifest validates offline against the Kubernetes schemas
//! (kubernetes-validate --strict: unknown fields are errors), and the fleet Job is what the slices
//! need: an Indexed Job whose completions, parallelism and `CPE_SIM_SLICES` agree, that passes
//! each pod its `JOB_COMPLETION_INDEX`, runs as the image's non-root user, and writes each slice's
//! outputs under its own index where the merge Job reads them.

use std::process::Command;

use serde_norway::Value;

use crate::support::repo;

fn manifests() -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(repo("deploy/kubernetes"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

fn load(name: &str) -> Value {
    serde_norway::from_slice(&std::fs::read(repo(&format!("deploy/kubernetes/{name}"))).unwrap()).unwrap()
}

#[test]
fn manifests_validate_against_the_kubernetes_schemas() {
    let files = manifests();
    assert!(files.len() >= 4, "{files:?}");
    let out = Command::new("kubernetes-validate")
        .arg("--strict")
        .args(&files)
        .output()
        .unwrap_or_else(|e| panic!("kubernetes-validate: {e}; scripts/test.sh installs it (pip install kubernetes-validate)"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy();
        assert!(text.contains(&format!("{name} passed")), "{name} was not validated:\n{text}");
    }
}

#[test]
fn the_fleet_job_gives_each_pod_its_slice() {
    let job = load("job.yaml");
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"].as_str(), Some("Indexed"));
    let n = spec["completions"].as_u64().unwrap();
    assert_eq!(spec["parallelism"].as_u64(), Some(n));
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true));
    assert_eq!(pod["securityContext"]["runAsUser"].as_u64(), Some(65532));
    let c = &pod["containers"][0];
    let env = c["env"].as_sequence().unwrap();
    let var = |name: &str| env.iter().find(|e| e["name"].as_str() == Some(name)).unwrap_or_else(|| panic!("no {name}"));
    assert_eq!(var("CPE_SIM_SLICES")["value"].as_str().and_then(|v| v.parse::<u64>().ok()), Some(n));
    assert_eq!(
        var("JOB_COMPLETION_INDEX")["valueFrom"]["fieldRef"]["fieldPath"].as_str(),
        Some("metadata.annotations['batch.kubernetes.io/job-completion-index']")
    );
    let args: Vec<&str> = c["args"].as_sequence().unwrap().iter().filter_map(Value::as_str).collect();
    for flag in ["--report-json", "--hdr-log"] {
        let i = args.iter().position(|a| *a == flag).unwrap_or_else(|| panic!("{flag} missing: {args:?}"));
        assert!(args[i + 1].starts_with("/results/") && args[i + 1].contains("$(JOB_COMPLETION_INDEX)"), "{flag} {}", args[i + 1]);
    }
    // The merge Job reads the same run's directory.
    let merge = load("merge-job.yaml");
    let m = &merge["spec"]["template"]["spec"]["containers"][0];
    let margs: Vec<&str> = m["args"].as_sequence().unwrap().iter().filter_map(Value::as_str).collect();
    assert_eq!(&margs[..3], ["report", "merge", "/results"]);
    let sub = |c: &Value| {
        c["volumeMounts"].as_sequence().unwrap().iter().find(|v| v["name"].as_str() == Some("results")).unwrap()["subPathExpr"].clone()
    };
    assert_eq!(sub(c), sub(m));
    assert_eq!(sub(c).as_str(), Some("$(RUN_NAME)"));
}
