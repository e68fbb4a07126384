//! Hot reload: in-place writes, atomic renames and Kubernetes ConfigMap
//! `..data` swaps are all noticed; only the changed monitor's task restarts;
//! an invalid file changes nothing that runs and is reported by get_health.

mod common;

use std::time::Duration;

use common::{Daemon, Mcp, Target, wait_for};
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(20);

fn monitors(target: &Target, b_path: &str, extra: &str) -> String {
    format!(
        "endpoints:\n  - name: a\n    url: {}\n    interval: 1s\n  - name: b\n    url: {}\n    interval: 1s\n  - name: c\n    url: {}\n    interval: 1s\n{extra}",
        target.url("/a"),
        target.url(b_path),
        target.url("/c")
    )
}

/// name -> (task_id, starts, generation)
async fn tasks(mcp: &Mcp) -> std::collections::BTreeMap<String, (u64, u64, u64)> {
    let page = mcp
        .ok("list_endpoints", json!({"detail": "full", "limit": 500}))
        .await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let t = &r["observed"]["task"];
            (
                r["name"].as_str().unwrap().to_owned(),
                (
                    t["task_id"].as_u64().unwrap(),
                    t["starts"].as_u64().unwrap(),
                    r["desired"]["generation"].as_u64().unwrap(),
                ),
            )
        })
        .collect()
}

async fn health(mcp: &Mcp) -> Value {
    mcp.ok("get_health", json!({})).await
}

/// Wait until get_health reports the file source's error; health is then
/// degraded. Answers the first problem it names.
async fn reported_problem(mcp: &Mcp, what: &str) -> String {
    let h = wait_for(&format!("get_health to report {what}"), T, async || {
        let h = health(mcp).await;
        h["sources"][0]["last_error"].is_object().then_some(h)
    })
    .await;
    assert_eq!(h["status"], "degraded", "{h}");
    h["sources"][0]["last_error"]["problems"][0]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn in_place_write_restarts_only_the_changed_monitor() {
    let target = Target::start().await;
    let d = Daemon::start(&monitors(&target, "/b", "")).await;
    let mcp = d.mcp().await;
    for n in ["a", "b", "c"] {
        mcp.wait_status(n, "up", T).await;
    }
    let before = tasks(&mcp).await;
    let gen_before = health(&mcp).await["desired"]["generation"]
        .as_u64()
        .unwrap();
    let a_checks = mcp.endpoint("a").await.unwrap()["observed"]["checks_total"]
        .as_u64()
        .unwrap();

    d.write_in_place(&monitors(&target, "/b-changed", ""));
    wait_for("the changed monitor to check its new URL", T, async || {
        (target.hits("/b-changed") > 0).then_some(())
    })
    .await;

    let after = tasks(&mcp).await;
    assert_eq!(
        after["a"], before["a"],
        "a untouched: same task id, start count and generation"
    );
    assert_eq!(after["c"], before["c"], "c untouched");
    assert_ne!(after["b"].0, before["b"].0, "b runs in a new task");
    assert_eq!(after["b"].1, 2, "b was started twice");
    let h = health(&mcp).await;
    assert_eq!(h["desired"]["generation"].as_u64().unwrap(), gen_before + 1);
    assert_eq!(
        after["b"].2,
        gen_before + 1,
        "b's desired generation is the new one"
    );
    assert_eq!(h["reconciler"]["last_pass"]["restarted"], 1);
    assert_eq!(h["reconciler"]["last_pass"]["unchanged"], 2);
    assert_eq!(h["reconciler"]["generation"], h["desired"]["generation"]);
    assert_eq!(h["drift"]["in_sync"], true);
    // a kept running and kept its history across the reload.
    let a_after = mcp.endpoint("a").await.unwrap()["observed"]["checks_total"]
        .as_u64()
        .unwrap();
    assert!(a_after >= a_checks);
}

#[tokio::test]
async fn atomic_rename_adds_and_removes_monitors() {
    let target = Target::start().await;
    let d = Daemon::start(&monitors(&target, "/b", "")).await;
    let mcp = d.mcp().await;
    mcp.wait_status("a", "up", T).await;
    let before = tasks(&mcp).await;

    let without_c = format!(
        "endpoints:\n  - name: a\n    url: {}\n    interval: 1s\n  - name: b\n    url: {}\n    interval: 1s\n  - name: d\n    url: {}\n    interval: 1s\n",
        target.url("/a"),
        target.url("/b"),
        target.url("/d")
    );
    d.write_atomic(&without_c);
    mcp.wait_status("d", "up", T).await;
    let after = tasks(&mcp).await;
    assert!(!after.contains_key("c"), "c was removed");
    assert_eq!(after["a"], before["a"]);
    assert_eq!(after["b"], before["b"]);
    // c's task is really stopped: its URL gets no more requests.
    let c_hits = target.hits("/c");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        target.hits("/c"),
        c_hits,
        "a removed monitor is no longer checked"
    );
}

#[tokio::test]
async fn configmap_data_symlink_swap_is_noticed() {
    use std::os::unix::fs::symlink;
    let target = Target::start().await;
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("conf");
    let v1 = conf.join("..2026_11_25_10_00_00.000000001");
    std::fs::create_dir_all(&v1).unwrap();
    std::fs::write(v1.join("monitors.yaml"), monitors(&target, "/b", "")).unwrap();
    symlink("..2026_11_25_10_00_00.000000001", conf.join("..data")).unwrap();
    symlink("..data/monitors.yaml", conf.join("monitors.yaml")).unwrap();
    let db = dir.path().join("db");
    let d = Daemon::spawn(dir, conf.clone(), db, &[]).await;
    let mcp = d.mcp().await;
    mcp.wait_status("a", "up", T).await;
    assert_eq!(
        tasks(&mcp).await.len(),
        3,
        "the ..data folder is not read twice"
    );

    // What the kubelet does: write a new timestamped folder, point a temp
    // symlink at it, rename the symlink over ..data.
    let v2 = conf.join("..2026_11_25_10_05_00.000000002");
    std::fs::create_dir_all(&v2).unwrap();
    let extra = format!(
        "  - name: e\n    url: {}\n    interval: 1s\n",
        target.url("/e")
    );
    std::fs::write(v2.join("monitors.yaml"), monitors(&target, "/b", &extra)).unwrap();
    symlink("..2026_11_25_10_05_00.000000002", conf.join("..data_tmp")).unwrap();
    std::fs::rename(conf.join("..data_tmp"), conf.join("..data")).unwrap();
    std::fs::remove_dir_all(&v1).unwrap();

    mcp.wait_status("e", "up", T).await;
    assert_eq!(tasks(&mcp).await.len(), 4);
}

#[tokio::test]
async fn invalid_reload_keeps_the_last_good_state_and_is_reported() {
    let target = Target::start().await;
    let good = monitors(&target, "/b", "");
    let d = Daemon::start(&good).await;
    let mcp = d.mcp().await;
    for n in ["a", "b", "c"] {
        mcp.wait_status(n, "up", T).await;
    }
    let before = tasks(&mcp).await;

    // An unknown key on line 7 (`intervall`), the last key of monitor b.
    let bad = good.replacen(
        "    interval: 1s\n  - name: c",
        "    intervall: 1s\n  - name: c",
        1,
    );
    assert_ne!(bad, good);
    d.write_in_place(&bad);
    let first = reported_problem(&mcp, "the bad file").await;
    assert!(
        first.contains("monitors.yaml:7:5:"),
        "located at line 7: {first}"
    );
    assert!(first.contains("intervall"), "{first}");
    assert_eq!(tasks(&mcp).await, before, "nothing that runs changed");
    mcp.wait_status("b", "up", T).await;

    d.write_in_place(&good);
    wait_for("the error to clear", T, async || {
        let h = health(&mcp).await;
        h["sources"][0]["last_error"].is_null().then_some(())
    })
    .await;
    assert_eq!(
        tasks(&mcp).await,
        before,
        "the same file again restarts nothing"
    );
    assert_eq!(health(&mcp).await["status"], "ok");
}

/// name -> starts, from the task of every endpoint.
async fn starts(mcp: &Mcp) -> std::collections::BTreeMap<String, u64> {
    tasks(mcp)
        .await
        .into_iter()
        .map(|(n, t)| (n, t.1))
        .collect()
}

#[tokio::test]
async fn an_emptied_file_is_refused_and_keeps_every_monitor() {
    let target = Target::start().await;
    let good = monitors(&target, "/b", "");
    let d = Daemon::start(&good).await;
    let mcp = d.mcp().await;
    for n in ["a", "b", "c"] {
        mcp.wait_status(n, "up", T).await;
    }
    let before = tasks(&mcp).await;

    // What `: > monitors.yaml`, a full disk or an interrupted `cat >` leaves.
    d.write_in_place("");
    let problem = reported_problem(&mcp, "the empty file").await;
    assert!(problem.contains("empty"), "{problem}");
    assert!(
        problem.contains("endpoints: []"),
        "says how to mean it: {problem}"
    );
    assert_eq!(tasks(&mcp).await, before, "no monitor stopped");
    // Blanks and comments only are empty too.
    d.write_in_place("\n# nothing here\n   \n");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(tasks(&mcp).await, before);
    assert!(
        !d.log().contains("stopped=3"),
        "the reconciler never stopped everything"
    );

    // Emptying it on purpose is written out, and applies.
    d.write_in_place("endpoints: []\n");
    wait_for("the explicit empty set to apply", T, async || {
        tasks(&mcp).await.is_empty().then_some(())
    })
    .await;
    assert_eq!(health(&mcp).await["sources"][0]["last_error"], Value::Null);
}

#[tokio::test]
async fn a_non_atomic_rewrite_applies_only_the_settled_file() {
    let target = Target::start().await;
    let good = monitors(&target, "/b", "");
    let d = Daemon::start(&good).await;
    let mcp = d.mcp().await;
    for n in ["a", "b", "c"] {
        mcp.wait_status(n, "up", T).await;
    }
    let before = tasks(&mcp).await;
    let gen_before = health(&mcp).await["desired"]["generation"]
        .as_u64()
        .unwrap();

    // truncate, 50 ms, a half-written file (only `a`), 50 ms, the whole file
    // with one change: only the end state may apply.
    d.write_in_place("");
    tokio::time::sleep(Duration::from_millis(50)).await;
    d.write_in_place(
        monitors(&target, "/b", "")
            .split("  - name: b")
            .next()
            .unwrap(),
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    d.write_in_place(&monitors(&target, "/b-changed", ""));
    wait_for("the final file's change", T, async || {
        (target.hits("/b-changed") > 0).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let s = starts(&mcp).await;
    assert_eq!(s["a"], 1, "a never restarted: {s:?}");
    assert_eq!(
        s["c"], 1,
        "c never stopped by the half-written middle: {s:?}"
    );
    assert_eq!(s["b"], 2, "b restarted once, for its real change: {s:?}");
    let after = tasks(&mcp).await;
    assert_eq!(after["a"], before["a"]);
    assert_eq!(
        health(&mcp).await["desired"]["generation"]
            .as_u64()
            .unwrap(),
        gen_before + 1,
        "one reload, not three"
    );
}

#[tokio::test]
async fn a_dangling_symlink_in_a_directory_is_an_error_and_keeps_its_monitors() {
    use std::os::unix::fs::symlink;
    let target = Target::start().await;
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("conf");
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    let a_yaml = format!(
        "endpoints:\n  - name: a\n    url: {}\n    interval: 1s\n",
        target.url("/a")
    );
    std::fs::write(conf.join("a.yaml"), &a_yaml).unwrap();
    let b_real = elsewhere.join("b.yaml");
    std::fs::write(
        &b_real,
        format!(
            "endpoints:\n  - name: b\n    url: {}\n    interval: 1s\n",
            target.url("/b")
        ),
    )
    .unwrap();
    symlink(&b_real, conf.join("b.yaml")).unwrap();
    let db = dir.path().join("db");
    let d = Daemon::spawn(dir, conf.clone(), db, &[]).await;
    let mcp = d.mcp().await;
    mcp.wait_status("a", "up", T).await;
    mcp.wait_status("b", "up", T).await;
    let before = tasks(&mcp).await;

    // The link's target moves away: the folder sends no event for that; the
    // next re-read (here an edit of a.yaml) finds it.
    std::fs::rename(&b_real, elsewhere.join("moved.yaml")).unwrap();
    std::fs::write(conf.join("a.yaml"), &a_yaml).unwrap();
    let problem = reported_problem(&mcp, "the dangling link").await;
    assert!(problem.contains("b.yaml"), "names the entry: {problem}");
    assert!(problem.contains("dangling"), "{problem}");
    assert_eq!(tasks(&mcp).await, before, "b's monitors keep running");
    mcp.wait_status("b", "up", T).await;
}

#[tokio::test]
async fn a_valid_reload_that_stops_most_monitors_is_reported() {
    let target = Target::start().await;
    let many: String = (0..8)
        .map(|i| {
            format!(
                "  - name: m{i}\n    url: {}\n    interval: 1s\n",
                target.url("/m")
            )
        })
        .collect();
    let d = Daemon::start(&format!("endpoints:\n{many}")).await;
    let mcp = d.mcp().await;
    mcp.wait_status("m7", "up", T).await;
    d.write_atomic(&format!(
        "endpoints:\n  - name: m0\n    url: {}\n    interval: 1s\n",
        target.url("/m")
    ));
    let h = wait_for("get_health to carry the warning", T, async || {
        let h = health(&mcp).await;
        h["sources"][0]["warning"].is_object().then_some(h)
    })
    .await;
    let msg = h["sources"][0]["warning"]["message"].as_str().unwrap();
    assert_eq!(msg, "the last reload stopped 7 of 8 monitors");
    assert_eq!(
        tasks(&mcp).await.len(),
        1,
        "it is applied: the file is valid"
    );
    assert!(d.log().contains("stopped 7 of 8"), "and logged");
}
