//! `--report-html FILE`: the run as one self-contained HTML file for people who were not there.
//! Everything is inline (the vendored chart library uPlot 1.6.32 from `assets/uplot/`, MIT, its
//! CSS, the data as JSON), so it opens offline and can be mailed or attached to a ticket.
//!
//! Charts over time (from the [`Timeline`]): sessions/s, sessions in flight, latency p50/p99 per
//! RPC, failures by cause, scheduler lag, with the phases marked; for sweeps, offered vs achieved
//! per step with the knee. Tables: the summary, thresholds, a section per phase, sessions by event
//! code, by ACS endpoint, and RPC latencies. The size is bounded by the timeline's
//! [`super::timeline::MAX_SAMPLES`], not by the run's length or fleet.
//!
//! A USP run's page ([`render_usp`]) is the same shell (uPlot, CSS, error capture) over the USP
//! report's figures and its progress ticks.
//!
//! The page records its own script errors into `#console-errors` and sets `data-charts` on
//! `<body>` once every chart is drawn, so a headless browser can check it (`tests/report_html.rs`).

use std::fmt::Write;

use serde_json::{json, Value};

use super::timeline::Timeline;

const UPLOT_JS: &str = include_str!("../../assets/uplot/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("../../assets/uplot/uPlot.min.css");

/// Escapes text for HTML content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// JSON for a `<script>` element: `</` cannot end the element early.
fn script_json(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into()).replace("</", "<\\/")
}

fn us(v: &Value) -> String {
    v.as_u64().map_or_else(|| "-".into(), super::report::fmt_us)
}

fn num(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        v => v.to_string(),
    }
}

/// A phase's (or the run's) headline figures as one table row.
fn summary_row(out: &mut String, name: &str, span: &str, r: &Value) {
    let s = &r["sessions"];
    let failures: Vec<String> = r["failures"]
        .as_object()
        .map(|m| m.iter().filter(|(k, _)| *k != "http_status_codes").map(|(k, v)| format!("{k} {v}")).collect())
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        esc(name),
        esc(span),
        num(&s["completed"]),
        num(&s["failed"]),
        esc(&if failures.is_empty() { "-".into() } else { failures.join(", ") }),
        num(&s["late"]),
        num(&s["per_second"]),
        us(&r["rpc"]["Inform"]["p50_us"]),
        us(&r["rpc"]["Inform"]["p99_us"]),
        us(&r["scheduler_lag"]["p99_us"]),
        esc(r["limited_by"]["what"].as_str().unwrap_or("-")),
    );
}

const SUMMARY_HEAD: &str = "<tr><th>phase</th><th>time</th><th>completed</th><th>failed</th><th>failures by cause</th><th>late</th><th>sessions/s</th><th>Inform p50</th><th>Inform p99</th><th>scheduler lag p99</th><th>limited by</th></tr>";

/// The page up to `<body>`: title, uPlot and its CSS inline, the error capture.
fn page_head(h: &mut String, run_id: &str) {
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>cpe-sim report, run {id}</title>\n<style>{UPLOT_CSS}\n{CSS}</style>\n<script>{CAPTURE}</script>\n<script>{UPLOT_JS}</script>\n</head><body>\n",
        id = esc(run_id)
    );
}

/// The page's end: the error box, the credits, `data` as `DATA` and the drawing script
/// (`DRAW_LIB`, then `charts`, then `DRAW_END`).
fn page_end(h: &mut String, data: &Value, charts: &str) {
    let _ = writeln!(
        h,
        "</table>\n<pre id=\"console-errors\"></pre>\n<p class=\"note\">cpe-sim · charts by uPlot 1.6.32 (MIT, © Leon Sorokin), inlined.</p>\n<script>const DATA = {};\n{DRAW_LIB}{charts}{DRAW_END}</script>\n</body></html>",
        script_json(data)
    );
}

/// The thresholds table, when the report has rules.
fn thresholds(h: &mut String, report: &Value) {
    if let Some(rules) = report["thresholds"].as_array().filter(|r| !r.is_empty()) {
        let _ = writeln!(h, "<h3>Thresholds</h3>\n<table><tr><th>rule</th><th>actual</th><th>result</th></tr>");
        for r in rules {
            let passed = r["passed"].as_bool().unwrap_or(false);
            let _ = writeln!(
                h,
                "<tr class=\"{}\"><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                if passed { "ok" } else { "bad" },
                esc(r["rule"].as_str().unwrap_or("")),
                esc(r["actual_text"].as_str().unwrap_or("")),
                if passed { "passed" } else { "BREACHED" }
            );
        }
        let _ = writeln!(h, "</table>");
    }
}

/// Renders the report. `report` is the run's JSON report (with `thresholds` and the endpoints'
/// `url`s), `sweep` the sweep table's JSON if this was a sweep.
pub fn render(t: &Timeline, report: &Value, sweep: Option<&Value>) -> String {
    let shards = report["run"]["shards"].as_u64().unwrap_or(0) as u32;
    let multiplier = report["run"]["multiplier"].as_f64().unwrap_or(1.0);
    let phases = t.phases_json(shards, multiplier);
    let mut h = String::new();
    let run = &report["run"];
    page_head(&mut h, &t.run_id.to_string());
    let _ = writeln!(h, "<h1>cpe-sim report</h1>");
    let _ = writeln!(
        h,
        "<p class=\"facts\">run <code>{}</code> · {} CPEs (cpe-{} …) on {} shard(s) · {}s · interval multiplier {} · limited by <b>{}</b>: {}</p>",
        esc(&t.run_id.to_string()),
        num(&run["cpes"]),
        num(&run["first_index"]),
        num(&run["shards"]),
        num(&run["duration_s"]),
        num(&run["multiplier"]),
        esc(report["limited_by"]["what"].as_str().unwrap_or("-")),
        esc(report["limited_by"]["why"].as_str().unwrap_or("")),
    );
    let _ = writeln!(h, "<h2>Summary</h2>\n<table>{SUMMARY_HEAD}");
    summary_row(&mut h, "whole run", &format!("0–{}s", num(&run["duration_s"])), report);
    let _ = writeln!(h, "</table>");
    thresholds(&mut h, report);
    let _ = writeln!(
        h,
        "<h2>Over time</h2>\n<p class=\"note\">Dashed lines mark where a phase begins. Rates and percentiles are per progress tick{}.</p>",
        if t.samples().len() >= super::timeline::MAX_SAMPLES / 2 {
            " (neighbouring ticks merged to bound the file: percentiles show the higher)"
        } else {
            ""
        }
    );
    for (id, title) in [
        ("sessions", "Sessions completed per second"),
        ("inflight", "Sessions in flight"),
        ("latency", "Service time per RPC, p50 and p99 (ms)"),
        ("failures", "Failures per second by cause"),
        ("lag", "Scheduler lag p99 (ms): the simulator's own lateness"),
    ] {
        let _ = writeln!(h, "<h3>{title}</h3><div class=\"chart\" id=\"chart-{id}\"></div>");
    }
    if let Some(sw) = sweep {
        let _ = writeln!(h, "<h2>Sweep: offered vs achieved</h2><div class=\"chart\" id=\"chart-sweep\"></div>");
        let _ = writeln!(h, "<p>{}</p>", esc(sw["verdict"].as_str().unwrap_or("")));
        let _ = writeln!(h, "<table><tr><th>step</th><th>multiplier</th><th>offered/s</th><th>achieved/s</th><th>Inform p50</th><th>Inform p99</th><th>failed</th><th>failures by cause</th><th>late</th><th>scheduler lag p99</th><th>limited by</th></tr>");
        let knee = sw["knee"]["step"].as_u64();
        for (i, s) in sw["steps"].as_array().into_iter().flatten().enumerate() {
            let causes: Vec<String> =
                s["failures"].as_object().map(|m| m.iter().map(|(k, v)| format!("{k} {v}")).collect()).unwrap_or_default();
            let _ = writeln!(
                h,
                "<tr{}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                if knee == Some(i as u64) { " class=\"knee\"" } else { "" },
                i + 1,
                num(&s["multiplier"]),
                num(&s["offered_per_second"]),
                num(&s["achieved_per_second"]),
                us(&s["inform_p50_us"]),
                us(&s["inform_p99_us"]),
                num(&s["failed"]),
                esc(&if causes.is_empty() { "-".into() } else { causes.join(", ") }),
                num(&s["late"]),
                us(&s["scheduler_lag_p99_us"]),
                esc(s["limited_by"].as_str().unwrap_or("-")),
            );
        }
        let _ = writeln!(h, "</table>");
    }
    let _ = writeln!(h, "<h2>Phases</h2>");
    for ph in phases.as_array().into_iter().flatten() {
        let name = ph["name"].as_str().unwrap_or("");
        let span = format!("{:.1}–{:.1}s", ph["start_s"].as_f64().unwrap_or(0.0), ph["end_s"].as_f64().unwrap_or(0.0));
        let _ = writeln!(h, "<section class=\"phase\"><h3>{}</h3><table>{SUMMARY_HEAD}", esc(name));
        summary_row(&mut h, name, &span, &ph["report"]);
        let _ = writeln!(h, "</table></section>");
    }
    let _ = writeln!(h, "<h2>Sessions by event code</h2>\n<p class=\"note\">A session counts under every event code its Inform carried (a first boot is 0 BOOTSTRAP and 1 BOOT).</p>\n<table><tr><th>event code</th><th>completed</th><th>failed</th></tr>");
    for (code, v) in report["events"].as_object().into_iter().flatten() {
        let _ = writeln!(h, "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", esc(code), num(&v["completed"]), num(&v["failed"]));
    }
    let _ = writeln!(
        h,
        "</table>\n<h2>Sessions by ACS endpoint</h2>\n<table><tr><th>#</th><th>endpoint</th><th>completed</th><th>failed</th></tr>"
    );
    for e in report["endpoints"].as_array().into_iter().flatten() {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            num(&e["index"]),
            esc(e["url"].as_str().unwrap_or("?")),
            num(&e["completed"]),
            num(&e["failed"])
        );
    }
    let _ = writeln!(h, "</table>\n<h2>RPC service time</h2>\n<table><tr><th>rpc</th><th>count</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr>");
    for (name, v) in report["rpc"].as_object().into_iter().flatten() {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(name),
            num(&v["count"]),
            us(&v["p50_us"]),
            us(&v["p90_us"]),
            us(&v["p99_us"]),
            us(&v["p999_us"]),
            us(&v["max_us"])
        );
    }
    let data = json!({
        "series": t.series_json(),
        "phases": phases.as_array().map(|p| p.iter().map(|x| json!({"name": x["name"], "start_s": x["start_s"]})).collect::<Vec<_>>()),
        "sweep": sweep,
    });
    page_end(&mut h, &data, DRAW_CWMP);
    h
}

/// A latency in the USP report's milliseconds, in the reports' time style.
fn ms(v: &Value) -> String {
    v.as_f64().map_or_else(|| "-".into(), |ms| super::report::fmt_us((ms * 1000.0).round() as u64))
}

/// One latency table row: name, count and the latency object's quantiles.
fn latency_row(h: &mut String, name: &str, cells: &[String], l: &Value) {
    let _ = write!(h, "<tr><td>{}</td>", esc(name));
    for c in cells {
        let _ = write!(h, "<td>{c}</td>");
    }
    let _ = writeln!(
        h,
        "<td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        ms(&l["p50_ms"]),
        ms(&l["p90_ms"]),
        ms(&l["p99_ms"]),
        ms(&l["max_ms"])
    );
}

/// `name count, …` of a JSON object of counts, `-` for none.
fn counts(v: &Value) -> String {
    let c: Vec<String> = v.as_object().into_iter().flatten().map(|(k, n)| format!("{k} {n}")).collect();
    if c.is_empty() {
        "-".into()
    } else {
        c.join(", ")
    }
}

/// Renders a USP run's page (`--protocol usp --report-html`): `title` says where the Agents
/// connected (URL, MTP, Controller); `report` is the USP JSON report (`mtp::report::to_json`, with `run` and
/// `thresholds`); `series` the progress ticks (`{"t_s": […], "connected": […], "booted": […],
/// "sent_per_s": […], "answered_per_s": […], "failures": […]}`, as `mtp::report::Ticks` keeps
/// them, bounded). Charts over time: connections held and Agents booted, Notifies per second
/// sent and answered, connection failures so far; tables: the summary, thresholds, Notify round
/// trips per notification, messages handled per USP message type, the embedded Controller's
/// round trips, failures, drops and errors by cause.
pub fn render_usp(title: &str, report: &Value, series: &Value) -> String {
    let run = &report["run"];
    let id = run["id"].as_str().unwrap_or("");
    let mut h = String::new();
    page_head(&mut h, id);
    let _ = writeln!(h, "<h1>cpe-sim report (USP)</h1>");
    let _ = writeln!(
        h,
        "<p class=\"facts\">run <code>{}</code> · {} agents (cpe-{} …) on {} shard(s) · {:.1}s · to {}{}</p>",
        esc(id),
        num(&report["agents"]),
        num(&run["first_index"]),
        num(&run["shards"]),
        report["elapsed_s"].as_f64().unwrap_or(0.0),
        esc(title),
        if report["complete"] == Value::Bool(false) { " · <b>incomplete: a shard panicked</b>" } else { "" },
    );
    let c = &report["connections"];
    let notified = |k: &str| report["notify"].as_object().into_iter().flatten().map(|(_, n)| n[k].as_u64().unwrap_or(0)).sum::<u64>();
    let _ = writeln!(h, "<h2>Summary</h2>\n<table><tr><th>agents</th><th>booted (Boot! answered)</th><th>connections held</th><th>peak</th><th>connects</th><th>connect p99</th><th>Notifies sent</th><th>answered</th><th>unanswered</th><th>connection failures</th></tr>");
    let _ = writeln!(
        h,
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n</table>",
        num(&report["agents"]),
        num(&report["booted"]),
        num(&c["held"]),
        num(&c["peak"]),
        num(&c["connects"]),
        ms(&c["connect_time"]["p99_ms"]),
        notified("sent"),
        notified("answered"),
        notified("unanswered"),
        esc(&counts(&report["failures"])),
    );
    thresholds(&mut h, report);
    let _ = writeln!(h, "<h2>Over time</h2>\n<p class=\"note\">One point per progress tick (neighbouring ticks merged pairwise past {} points, rates over the merged span).</p>", super::timeline::MAX_SAMPLES);
    for (id, title) in [
        ("connections", "Connections held and Agents booted"),
        ("notifies", "Notifies per second, sent and answered"),
        ("failures", "Connection failures so far"),
    ] {
        let _ = writeln!(h, "<h3>{title}</h3><div class=\"chart\" id=\"chart-{id}\"></div>");
    }
    let _ = writeln!(h, "<h2>Notify round trips (Notify → NotifyResp)</h2>\n<table><tr><th>notification</th><th>sent</th><th>answered</th><th>retransmitted</th><th>unanswered</th><th>p50</th><th>p90</th><th>p99</th><th>max</th></tr>");
    for (name, n) in report["notify"].as_object().into_iter().flatten() {
        let cells = [num(&n["sent"]), num(&n["answered"]), num(&n["retransmitted"]), num(&n["unanswered"])];
        latency_row(&mut h, name, &cells, &n["round_trip"]);
    }
    let _ = writeln!(h, "</table>\n<h2>Messages handled by the Agents (time to answer)</h2>\n<table><tr><th>message type</th><th>count</th><th>p50</th><th>p90</th><th>p99</th><th>max</th></tr>");
    for (name, t) in report["handled"].as_object().into_iter().flatten() {
        latency_row(&mut h, name, &[num(&t["count"])], &t["latency"]);
    }
    let ctl = &report["controller"];
    if ctl.is_object() {
        let _ = writeln!(
            h,
            "</table>\n<h2>Embedded Controller</h2>\n<p>Boot! from {} agents; notifications: {}; {} errors answered, {} records dropped.</p>\n<table><tr><th>request</th><th>round trips</th><th>p50</th><th>p90</th><th>p99</th><th>max</th></tr>",
            num(&ctl["booted_agents"]),
            esc(&counts(&ctl["notifications"])),
            num(&ctl["errors"]),
            num(&ctl["dropped"]),
        );
        for (name, t) in ctl["round_trips"].as_object().into_iter().flatten() {
            latency_row(&mut h, name, &[num(&t["count"])], &t["latency"]);
        }
    }
    let _ = writeln!(h, "</table>\n<h2>Failures, drops and errors</h2>\n<table><tr><th>what</th><th>by cause</th></tr>");
    for (what, v) in [
        ("connection failures", &report["failures"]),
        ("records dropped", &report["dropped"]),
        ("errors answered (code)", &report["errors_answered"]),
    ] {
        let _ = writeln!(h, "<tr><td>{what}</td><td>{}</td></tr>", esc(&counts(v)));
    }
    let _ = writeln!(h, "<tr><td>publishes not queued</td><td>{}</td></tr>", num(&report["publish_failed"]));
    let _ = writeln!(h, "<tr><td>notifies for another Controller (not sent)</td><td>{}</td></tr>", num(&report["notify_no_route"]));
    page_end(&mut h, &json!({ "series": series }), DRAW_USP);
    h
}

/// Draws a USP run's charts from `DATA`.
const DRAW_USP: &str = r#"
  chart('connections', ['connected', 'booted'], [S.connected, S.booted], { yLabel: 'agents' });
  chart('notifies', ['sent/s', 'answered/s'], [S.sent_per_s, S.answered_per_s], { yLabel: 'per second' });
  chart('failures', ['connection failures'], [S.failures], { yLabel: 'so far' });
"#;

const CSS: &str = r#"
body { font: 14px/1.4 system-ui, sans-serif; margin: 20px 28px; color: #222; max-width: 1200px; }
h1 { margin: 0 0 4px; } h2 { margin-top: 28px; border-bottom: 1px solid #ddd; } h3 { margin: 16px 0 4px; font-size: 15px; }
table { border-collapse: collapse; margin: 6px 0; } th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; }
th { background: #f4f4f4; } td:first-child, th:first-child { text-align: left; }
tr.bad td { background: #fde2e2; } tr.ok td { background: #e6f4e6; } tr.knee td { background: #fff3c4; font-weight: bold; }
.facts { color: #444; } .note { color: #666; font-size: 12px; } .chart { margin-bottom: 8px; }
#console-errors:empty { display: none; } #console-errors { color: #b00; }
"#;

/// Runs first: collects script errors and console.error calls into `#console-errors`.
const CAPTURE: &str = r#"
window.__errors = [];
window.addEventListener('error', function (e) { window.__errors.push(String(e.message)); });
(function () { var ce = console.error; console.error = function () { window.__errors.push(Array.prototype.join.call(arguments, ' ')); ce.apply(console, arguments); }; })();
"#;

/// The chart helpers every page's drawing script starts with (`chart(id, names, cols, opts)`
/// draws one uPlot chart into `#chart-<id>` from `DATA.series`, counting it).
const DRAW_LIB: &str = r#"
(function () {
  var S = DATA.series, charts = 0;
  var palette = ['#1f77b4','#d62728','#2ca02c','#ff7f0e','#9467bd','#8c564b','#e377c2','#17becf','#7f7f7f','#bcbd22'];
  var width = Math.max(600, Math.min(1150, document.body.clientWidth - 20));
  function phaseLines(u) {
    var ctx = u.ctx; ctx.save(); ctx.strokeStyle = '#999'; ctx.setLineDash([5, 4]); ctx.fillStyle = '#555';
    ctx.font = (11 * devicePixelRatio) + 'px sans-serif';
    (DATA.phases || []).forEach(function (p) {
      var x = u.valToPos(p.start_s, 'x', true);
      if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) return;
      ctx.beginPath(); ctx.moveTo(x, u.bbox.top); ctx.lineTo(x, u.bbox.top + u.bbox.height); ctx.stroke();
      ctx.fillText(p.name, x + 4, u.bbox.top + 12 * devicePixelRatio);
    });
    ctx.restore();
  }
  function chart(id, names, cols, opts) {
    var el = document.getElementById('chart-' + id);
    if (!el) return;
    opts = opts || {};
    var series = [{ label: opts.xLabel || 'time (s)' }];
    names.forEach(function (n, i) {
      var knee = n === 'knee';
      series.push({ label: n, stroke: palette[i % palette.length], width: knee ? 0 : 1.5, dash: /p50/.test(n) ? [4, 3] : undefined,
                    spanGaps: false, points: { show: !!opts.points, size: knee ? 14 : 6, fill: knee ? palette[i % palette.length] : undefined } });
    });
    if (names.length === 0) { el.textContent = 'nothing to plot: none occurred in this run'; charts++; return; }
    new uPlot({ width: width, height: 240, series: series, scales: { x: { time: false } },
                axes: [{ label: opts.xLabel || 'time since start (s)', splits: opts.x ? function () { return opts.x; } : undefined },
                       { label: opts.yLabel || '' }],
                hooks: opts.noPhases ? {} : { draw: [phaseLines] } }, [opts.x || S.t_s].concat(cols), el);
    charts++;
  }
"#;

/// Draws a CWMP run's charts from `DATA`.
const DRAW_CWMP: &str = r#"
  chart('sessions', ['sessions/s'], [S.sessions_per_s], { yLabel: 'sessions/s' });
  chart('inflight', ['in flight'], [S.in_flight], { yLabel: 'sessions' });
  var ln = [], lc = [];
  Object.keys(S.rpc).forEach(function (r) { ln.push(r + ' p99'); lc.push(S.rpc[r].p99_ms); ln.push(r + ' p50'); lc.push(S.rpc[r].p50_ms); });
  chart('latency', ln, lc, { yLabel: 'ms' });
  var fn = Object.keys(S.failures);
  chart('failures', fn, fn.map(function (c) { return S.failures[c]; }), { yLabel: 'per second' });
  chart('lag', ['scheduler lag p99'], [S.lag_p99_ms], { yLabel: 'ms' });
  if (DATA.sweep) {
    var st = DATA.sweep.steps, knee = DATA.sweep.knee ? DATA.sweep.knee.step : -1;
    var x = st.map(function (_, i) { return i + 1; });
    chart('sweep', ['offered/s', 'achieved/s', 'knee'],
          [st.map(function (s) { return s.offered_per_second; }), st.map(function (s) { return s.achieved_per_second; }),
           st.map(function (s, i) { return i === knee ? s.achieved_per_second : null; })],
          { x: x, xLabel: 'step (multiplier: ' + st.map(function (s) { return s.multiplier; }).join(', ') + ')', yLabel: 'Informs/s', points: true, noPhases: true });
  }
"#;

/// Ends every page's drawing script: says how many charts were drawn, shows script errors.
const DRAW_END: &str = r#"
  document.body.setAttribute('data-charts', String(charts));
})();
window.addEventListener('load', function () { document.getElementById('console-errors').textContent = window.__errors.join('\n'); });
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::run_id::RunId;
    use crate::stats::Recorder;
    use std::time::Duration;

    #[test]
    fn self_contained_escaped_and_bounded() {
        let mut t = Timeline::new(RunId(7), 3, vec!["http://acs/<x>".into()]);
        for i in 0..5000u64 {
            let mut r = Recorder::new();
            r.outcomes.completed = 1;
            r.record(crate::stats::m::INFORM, Duration::from_millis(1 + i % 9));
            t.record(&r, Duration::from_secs(i + 1), Duration::from_secs(1), 1);
        }
        let report = json!({"run": {"cpes": 3, "shards": 1}, "endpoints": [{"index": 0, "url": "http://acs/<x>", "completed": 1, "failed": 0}],
                            "rpc": {}, "events": {"1 BOOT": {"completed": 1, "failed": 0}}, "thresholds": [{"rule": "a</script>", "passed": true}]});
        let html = render(&t, &report, None);
        assert!(!html.contains("src=\"http") && !html.contains("href=\"http"), "nothing loaded from the network");
        assert!(html.contains("http://acs/&lt;x&gt;") && html.contains("a&lt;/script&gt;"));
        assert_eq!(html.matches("</script>").count(), 3, "data cannot close its script element early");
        assert!(html.len() < 400_000, "bounded: {} bytes for 5000 ticks", html.len());
    }
}
