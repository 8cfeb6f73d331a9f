#include "bench/html_report_script.h"

namespace baton::bench {

const char* const kHtmlReportScript = R"JS(
const D = JSON.parse(document.getElementById('baton-data').textContent);
const COLORS = ['#1f77b4','#d62728','#2ca02c','#ff7f0e','#9467bd','#8c564b','#e377c2','#17becf'];
const color = i => COLORS[i % COLORS.length];
const hasSlo = doc => (doc.slo || []).length > 0 || (doc.slo_min_attainment || 0) > 0;
const sloText = (D.docs[0] && (D.docs[0].slo || []).map(t => t.target).join(', ')) || '';
const sloTitle = sloText ? 'SLO ' + sloText : 'no SLO given';
const offered = r => r.metrics.offered_rate_rps || r.target_rate_rps;
// met: true, broken: false, no SLO: null
const verdict = (doc, r) => hasSlo(doc) ? !!r.slo.sustainable : null;
const completed = doc => doc.runs.filter(r => !(r.slo && r.slo.stopped_early));
// One point per requested rate over the completed trials (repeats: their median), by offered load.
function curve(doc, f) {
  const byRate = {};
  completed(doc).forEach(r => { const y = f(r); if (y === null || y === undefined) return;
    (byRate[r.target_rate_rps] = byRate[r.target_rate_rps] || []).push({x: offered(r), y: y, pass: verdict(doc, r)}); });
  return Object.values(byRate).map(g => { g.sort((a, b) => a.y - b.y); return g[(g.length - 1) >> 1]; })
               .sort((a, b) => a.x - b.x);
}
const markStyle = ctx => (ctx.raw && ctx.raw.pass === false) ? 'crossRot' : 'circle';
const markRadius = ctx => (ctx.raw && ctx.raw.pass === false) ? 7 : 4;
function legendMarks(ds) {
  if (!D.docs.some(hasSlo)) return;
  ds.push({label: 'SLO met', data: [], pointStyle: 'circle', borderColor: '#444', backgroundColor: '#444'});
  ds.push({label: 'SLO broken', data: [], pointStyle: 'crossRot', borderColor: '#444', backgroundColor: '#444',
           pointRadius: 7});
}
function limitsFor(metric) {
  const seen = {};
  D.docs.forEach(d => (d.slo || []).forEach(t => { if (t.metric === metric) seen[t.target] = t.limit_ms; }));
  return Object.entries(seen);
}
function draw(id, type, ds, title, scales, extra) {
  const canvas = document.getElementById(id);
  let points = 0, broken = 0;
  ds.forEach(s => (s.data || []).forEach(p => { if (p && p.pass !== undefined) { ++points; if (p.pass === false) ++broken; } }));
  canvas.setAttribute('aria-label', Array.isArray(title) ? title.join('; ') : title);
  canvas.dataset.points = points;
  canvas.dataset.broken = broken;
  new Chart(canvas, {type: type, data: Object.assign({datasets: ds}, extra || {}), options: {
    animation: false, responsive: true, maintainAspectRatio: false,
    plugins: {title: {display: true, text: title},
              legend: {labels: {usePointStyle: true, boxWidth: 10, font: {size: 11}}}},
    scales: scales}});
}
function vsRate(id, metric, name, logY) {
  const ds = []; let minX = Infinity, maxX = 0;
  D.docs.forEach((doc, i) => {
    for (const [stat, dash] of [['p90', []], ['p50', [6, 4]]]) {
      const pts = curve(doc, r => r.metrics[metric + '_ms'][stat]).filter(p => p.y > 0);
      pts.forEach(p => { minX = Math.min(minX, p.x); maxX = Math.max(maxX, p.x); });
      ds.push({label: doc.label + ' ' + stat, data: pts, showLine: true, borderColor: color(i),
               backgroundColor: color(i), borderDash: dash, pointStyle: markStyle, pointRadius: markRadius});
    }
  });
  if (!isFinite(minX)) { minX = 0; maxX = 1; }
  limitsFor(metric).forEach(([n, ms]) => ds.push({label: 'limit ' + n, data: [{x: minX, y: ms}, {x: maxX, y: ms}],
      showLine: true, borderColor: '#888', borderDash: [2, 3], pointRadius: 0, borderWidth: 1.5}));
  legendMarks(ds);
  draw(id, 'scatter', ds, name + ' p90 (solid) and p50 (dashed) vs offered load, completed trials; ' + sloTitle,
       {x: {title: {display: true, text: 'offered load (req/s)'}},
        y: logY ? {type: 'logarithmic', title: {display: true, text: 'ms (log scale)'}}
                : {title: {display: true, text: 'ms'}}});
}
function bars(id) {
  const base = D.docs.find(d => d.label === D.baseline) || D.docs[0];
  const best = d => d.max_sustainable_offered_rps || d.max_sustainable_rps;
  const b = best(base);
  const labels = D.docs.map(d => { const v = best(d);
    return (v && b) ? d.label + ' (' + (v / b).toFixed(2) + 'x)' : d.label + (v ? '' : ' (no rate met it)'); });
  const ds = [{label: 'max sustainable offered load', data: D.docs.map(d => best(d) || 0),
               backgroundColor: D.docs.map((d, i) => color(i))}];
  draw(id, 'bar', ds, 'Max sustainable offered load (the highest rate that met the SLO; ratio to ' + base.label +
       '); ' + sloTitle, {y: {beginAtZero: true, title: {display: true, text: D.unit}}}, {labels: labels});
}
// One deployment: every trial in order, its requested and offered rate, marked met, broken or stopped early.
function trials(id) {
  const doc = D.docs[0];
  const mark = r => verdict(doc, r);
  const req = doc.runs.map((r, k) => ({x: k + 1, y: r.target_rate_rps, pass: mark(r), stopped: !!(r.slo && r.slo.stopped_early)}));
  const off = doc.runs.map((r, k) => ({x: k + 1, y: offered(r), pass: mark(r), stopped: !!(r.slo && r.slo.stopped_early)}));
  const style = ctx => !ctx.raw ? 'circle' : ctx.raw.stopped ? 'triangle' : ctx.raw.pass === false ? 'crossRot' : 'circle';
  const ds = [{label: 'offered', data: off, showLine: false, borderColor: color(0), backgroundColor: color(0),
               pointStyle: style, pointRadius: 7},
              {label: 'requested', data: req, showLine: false, borderColor: '#999', backgroundColor: '#999',
               pointStyle: style, pointRadius: 4}];
  legendMarks(ds);
  if (doc.runs.some(r => r.slo && r.slo.stopped_early)) ds.push({label: 'stopped early (broken for certain)',
      data: [], pointStyle: 'triangle', borderColor: '#444', backgroundColor: '#444'});
  draw(id, 'scatter', ds, 'Each trial: offered and requested rate, marked by verdict; ' + sloTitle,
       {x: {title: {display: true, text: 'trial'}, ticks: {stepSize: 1}},
        y: {beginAtZero: true, title: {display: true, text: D.unit}}});
}
function goodput(id) {
  const ds = [];
  D.docs.forEach((doc, i) => {
    for (const [key, dash, name] of [['goodput', [], 'goodput'], ['throughput', [6, 4], 'throughput']]) {
      const pts = curve(doc, r => key === 'goodput' ? r.slo.goodput_rps : r.metrics.request_throughput_rps);
      ds.push({label: doc.label + ' ' + name, data: pts, showLine: true, borderColor: color(i),
               backgroundColor: color(i), borderDash: dash, pointStyle: markStyle, pointRadius: markRadius});
    }
  });
  legendMarks(ds);
  draw(id, 'scatter', ds, 'Goodput (requests within every limit, solid) and throughput (dashed) vs offered load, ' +
       'completed trials; ' + sloTitle, {x: {title: {display: true, text: 'offered load (req/s)'}},
        y: {beginAtZero: true, title: {display: true, text: 'req/s'}}});
}
// The run a deployment's CDFs show, as a label: "agg at 2.00 req/s offered: SLO met".
function cdfRun(doc) {
  const r = doc.runs[doc.distribution_run];
  if (!r) return doc.label;
  const v = verdict(doc, r);
  const at = r.metrics.offered_rate_rps ? r.metrics.offered_rate_rps.toFixed(2) + ' req/s offered (' +
             r.target_rate_rps.toFixed(2) + ' requested)' : r.target_rate_rps.toFixed(2) + ' ' + D.unit + ' requested';
  return doc.label + ' at ' + at + ': ' + (v === null ? 'no SLO' : v ? 'SLO met' : 'SLO broken');
}
function cdf(id, key, name) {
  const ds = D.docs.map((doc, i) => ({label: cdfRun(doc), data: ((doc.cdf || {})[key] || []).map(p => ({x: p[0], y: p[1]})),
      showLine: true, borderColor: color(i), backgroundColor: color(i), pointRadius: 0, borderWidth: 2}));
  limitsFor(key.replace('_ms', '')).forEach(([n, ms]) => ds.push({label: 'limit ' + n,
      data: [{x: ms, y: 0}, {x: ms, y: 1}], showLine: true, borderColor: '#888', borderDash: [2, 3], pointRadius: 0}));
  const runs = D.docs.map(cdfRun).join('; ');
  draw(id, 'scatter', ds, [name + ' CDF of one run: ' + runs, sloTitle],
       {x: {title: {display: true, text: 'ms'}}, y: {min: 0, max: 1, title: {display: true, text: 'fraction of requests'}}});
}
vsRate('c-ttft', 'ttft', 'TTFT', true);
vsRate('c-tpot', 'tpot', 'TPOT', false);
vsRate('c-e2e', 'e2e', 'E2E latency', true);
if (D.docs.length > 1) bars('c-max'); else trials('c-max');
goodput('c-good');
cdf('d-ttft', 'ttft_ms', 'TTFT');
cdf('d-tpot', 'tpot_ms', 'TPOT');
cdf('d-e2e', 'e2e_ms', 'E2E latency');
)JS";

}  // namespace baton::bench
