// The report page's template. Every `{{value}}` is HTML-escaped by the template engine; the only
// unescaped insertions (`{{{…}}}`) are this module's own style sheet, script and SVG charts.

enum ReportTemplate {
    static let page = #"""
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{{csp}}">
<title>{{view.title}}</title>
<style>{{{style}}}</style>
</head>
<body>
{{#view}}
<header>
  <h1>{{title}} <span id="verdict" class="verdict {{#passed}}pass{{/passed}}{{^passed}}fail{{/passed}}">{{verdict}}</span></h1>
  <p class="muted">{{generatedBy}}{{^complete}} — <strong>interrupted: only the cases that finished are here</strong>{{/complete}}</p>
  <nav><a href="#summary">Summary</a> · <a href="#rules">Rules</a> · <a href="#findings-section">Findings</a> · <a href="#cases">Cases</a></nav>
</header>
<main>
<section id="summary">
  <h2>Summary</h2>
  <div class="cards">
    {{#counts}}<div class="card"><div class="num" data-count="{{key}}">{{value}}</div><div class="muted">{{key}}</div></div>{{/counts}}
  </div>
  <div class="grid">
    <div>
      <h3>Findings by severity</h3>
      <table class="compact"><tbody>
      {{#severities}}<tr class="sev-{{severity}}"><th>{{severity}}{{#atOrAboveFailOn}} <span class="muted">(fails)</span>{{/atOrAboveFailOn}}</th><td class="n" data-severity-count="{{severity}}">{{count}}</td></tr>{{/severities}}
      </tbody></table>
    </div>
    <div>
      <h3>Model</h3>
      <table class="compact"><tbody>{{#model}}<tr><th>{{key}}</th><td class="wrap"{{#hasFull}} title="{{full}}"{{/hasFull}}>{{value}}</td></tr>{{/model}}</tbody></table>
      <h3>Settings</h3>
      <table class="compact"><tbody>{{#settings}}<tr><th>{{key}}</th><td class="wrap"{{#hasFull}} title="{{full}}"{{/hasFull}}>{{value}}</td></tr>{{/settings}}</tbody></table>
    </div>
    <div>
      <h3>Packs</h3>
      <table class="compact"><tbody>{{#packs}}<tr><th>{{name}}</th><td class="wrap">{{path}}<br><span class="muted digest" title="sha256 {{sha256}}">sha256 {{digest}}</span></td></tr>{{/packs}}</tbody></table>
      {{#hasReconstruction}}<h3>SAE reconstruction</h3>{{/hasReconstruction}}
      <ul class="plain">{{#reconstruction}}<li><strong>{{key}}</strong>: {{value}}</li>{{/reconstruction}}</ul>
    </div>
  </div>
  <h3>The rules' validity <span class="muted">(measured for {{validityMeasured}} rules)</span></h3>
  <p class="muted">What <code>probity eval</code> measured for each rule on held-out labelled data, as its file records: AUROC, the true and false positive rates at its threshold, the false positive rate on benign prompts, and the examples it was measured on. A finding of a rule near AUROC 0.5 says little.</p>
  <div class="scroll"><table id="validity" class="compact">
    <thead><tr><th>rule</th><th class="n">AUROC</th><th class="n">TPR</th><th class="n">FPR</th><th class="n">benign FPR</th><th class="n">n</th><th>data</th></tr></thead>
    <tbody>
    {{#validity}}<tr data-rule="{{id}}"{{^measured}} class="muted"{{/measured}}><td>{{id}}</td>{{#measured}}<td class="n" data-auroc>{{auroc}}</td><td class="n" data-tpr>{{tpr}}</td><td class="n" data-fpr>{{fpr}}</td><td class="n" data-benign-fpr>{{benignFPR}}</td><td class="n" data-n>{{n}}</td><td class="digest" title="sha256 {{data}}">{{dataDigest}}</td>{{/measured}}{{^measured}}<td colspan="6">unmeasured (no <code>validity</code> in its file)</td>{{/measured}}</tr>
    {{/validity}}
    </tbody>
  </table></div>
  {{#hasFailedExpectations}}
  <h3>Expectations failed</h3>
  <ul class="plain">{{#failedExpectations}}<li><a href="#{{caseAnchor}}">{{caseID}}</a>: {{rule}} expected {{expected}}, was {{actual}} <span class="muted">({{location}})</span></li>{{/failedExpectations}}</ul>
  {{/hasFailedExpectations}}
</section>

<section id="rules">
  <h2>Rules and their validity</h2>
  <div class="scroll"><table id="rule-table">
    <thead><tr><th>rule</th><th>severity</th><th class="n">findings</th><th>validity</th><th>defined at</th></tr></thead>
    <tbody>
    {{#rules}}<tr data-rule="{{id}}"><td><strong>{{id}}</strong>{{#intervenes}} <span class="tag">intervenes</span>{{/intervenes}}<br><span class="muted">{{description}}</span></td>
      <td class="sev-{{severity}}">{{severity}}</td><td class="n" data-rule-count="{{id}}">{{count}}</td><td>{{trust}}</td>
      <td><a class="loc" href="{{href}}">{{location}}</a></td></tr>
    {{/rules}}
    </tbody>
  </table></div>
</section>

<section id="findings-section">
  <h2>Findings <span class="muted">(<span id="findings-shown">{{findingsCount}}</span> of {{findingsCount}} shown)</span></h2>
  <p class="muted">A finding is a rule firing on a case's baseline run. Read it with the rule's validity in mind.</p>
  <div class="filters">
    <label>severity <select id="filter-severity"><option value="">all</option>{{#severityOptions}}<option value="{{value}}">{{label}}</option>{{/severityOptions}}</select></label>
    <label>rule <select id="filter-rule"><option value="">all</option>{{#ruleOptions}}<option value="{{value}}">{{label}}</option>{{/ruleOptions}}</select></label>
    <label>case <input id="filter-case" type="search" placeholder="case id contains…" autocomplete="off"></label>
  </div>
  <div class="scroll"><table id="findings">
    <thead><tr>
      <th><button type="button" data-key="case">case</button></th>
      <th><button type="button" data-key="rule">rule</button></th>
      <th><button type="button" data-key="rank" data-numeric="1">severity</button></th>
      <th class="n"><button type="button" data-key="value" data-numeric="1">value</button></th>
      <th class="n"><button type="button" data-key="positions" data-numeric="1">positions</button></th>
      <th>rule file</th>
    </tr></thead>
    <tbody>
    {{#findings}}<tr data-case="{{caseID}}" data-rule="{{rule}}" data-severity="{{severity}}" data-rank="{{rank}}" data-value="{{valueSort}}" data-positions="{{positions}}">
      <td><a href="#{{caseAnchor}}">{{caseID}}</a></td><td>{{rule}}</td><td class="sev-{{severity}}">{{severity}}</td>
      <td class="n">{{value}}</td><td class="n">{{positions}}</td><td><a class="loc" href="{{href}}">{{location}}</a></td></tr>
    {{/findings}}
    </tbody>
  </table></div>
  {{^hasFindings}}<p>No rule fired on any baseline run.</p>{{/hasFindings}}
</section>

<section id="cases">
  <h2>Cases</h2>
  <p class="muted">Each transcript is a strip of tokens, shaded by the feature chosen above it (orange positive, blue negative; darker is stronger). Outlined tokens are where a rule fired; underlined ones were generated. Hover or tap a token for its top features.</p>
  {{#cases}}
  <details class="case" id="{{anchor}}" data-case="{{id}}">
    <summary><strong>{{id}}</strong> {{#hasFindings}}<span class="tag">{{findings}}</span>{{/hasFindings}}{{^expectationsPassed}} <span class="tag bad">expectation failed</span>{{/expectationsPassed}}</summary>
    <p class="muted">defined at <a class="loc" href="{{href}}">{{location}}</a> · {{promptTokens}} prompt tokens</p>
    {{#runs}}
    <h4>{{name}} run <span class="muted">— {{summary}}</span></h4>
    {{#hasOptions}}<label class="feature">shade by <select class="feature" data-strip="strip-{{key}}">{{#options}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{label}}</option>{{/options}}</select></label>{{/hasOptions}}
    <div class="strip" id="strip-{{key}}" data-acts="{{acts}}">{{#tokens}}<span class="t{{#fired}} fired{{/fired}}{{#generated}} gen{{/generated}}" data-p="{{p}}" title="{{tip}}">{{text}}</span>{{/tokens}}</div>
    <pre class="tip" id="tip-strip-{{key}}" aria-live="polite">Tap or click a token for its top features.</pre>
    {{#hasFired}}<ul class="plain">{{#fired}}<li><span class="sev-{{severity}}">{{severity}}</span> <strong>{{rule}}</strong> value {{value}} at {{at}}</li>{{/fired}}</ul>{{/hasFired}}
    {{/runs}}
    {{#hasDiff}}
    <h4>Answers, baseline → steered</h4>
    <p class="diff">{{#diff}}{{#same}}<span>{{text}}</span>{{/same}}{{#removed}}<del>{{text}}</del>{{/removed}}{{#added}}<ins>{{text}}</ins>{{/added}}{{/diff}}</p>
    {{/hasDiff}}
    {{#effects}}
    <h4>Effects of the interventions</h4>
    <p>text changed: {{textChanged}} · KL(baseline ‖ steered) {{kl}} · top-1 token changed at {{top1}} of generated positions</p>
    {{#hasKL}}<figure>{{{klChart}}}<figcaption class="muted">KL per generated position of the steered path</figcaption></figure>{{/hasKL}}
    {{#hasMoved}}<div class="scroll"><table class="compact moved" id="moved-{{anchor}}"><caption class="muted">Tokens every rule steering moved most: mean change in probability (percentage points) and in logit over the generated positions</caption>
      <thead><tr><th>token</th><th></th><th class="n">Δ probability (pp)</th><th class="n">Δ logit</th></tr></thead>
      <tbody>{{#moved}}<tr class="{{#up}}up{{/up}}{{^up}}down{{/up}}"><td class="tok">{{token}}</td><td>{{{bar}}}</td><td class="n">{{probability}}</td><td class="n muted">{{logit}}</td></tr>{{/moved}}</tbody>
    </table></div>{{/hasMoved}}
    <div class="scroll"><table class="effects">
      <thead><tr><th>intervening rule</th><th class="n">positions edited</th><th>fired on baseline</th><th>still fires?</th><th>alone</th><th>tokens it moved most alone (Δ probability pp, Δ logit)</th><th>named tokens' logit changes (mean, first position)</th></tr></thead>
      <tbody>
      {{#interventions}}<tr><td>{{rule}}</td><td class="n">{{positionsEdited}}</td><td>{{firedBaseline}}</td><td class="{{#stillFires}}bad{{/stillFires}}">{{firesAfter}}</td><td class="muted">{{alone}}</td>
        <td>{{#hasMoved}}<table class="compact moved">{{#moved}}<tr class="{{#up}}up{{/up}}{{^up}}down{{/up}}"><td class="tok">{{token}}</td><td>{{{bar}}}</td><td class="n">{{probability}}</td><td class="n muted">{{logit}}</td></tr>{{/moved}}</table>{{/hasMoved}}{{^hasMoved}}<span class="muted">{{movedNote}}</span>{{/hasMoved}}</td>
        <td>{{#hasDeltas}}<table class="compact">{{#deltas}}<tr><td class="tok">{{token}}</td><td>{{{bar}}}</td><td class="n">{{mean}}</td><td class="n muted">{{first}}</td></tr>{{/deltas}}</table>{{/hasDeltas}}{{^hasDeltas}}<span class="muted">no tokens named</span>{{/hasDeltas}}</td></tr>
      {{/interventions}}
      </tbody>
    </table></div>
    {{/effects}}
    {{#hasExpectations}}
    <h4>Expectations</h4>
    <ul class="plain">{{#expectations}}<li class="{{^passed}}bad{{/passed}}">{{rule}}: expected {{expected}}, was {{actual}} <span class="muted">({{location}})</span></li>{{/expectations}}</ul>
    {{/hasExpectations}}
    <details class="prompt"><summary>prompt as the model read it</summary><pre class="wrap">{{prompt}}</pre></details>
  </details>
  {{/cases}}
</section>
</main>
{{/view}}
<script>{{{script}}}</script>
</body>
</html>
"""#

    static let style = #"""
:root{--fg:#1d2329;--muted:#5f6b76;--line:#d9dee3;--bg:#fff;--card:#f5f7f9;--pass:#1f7a3a;--fail:#b3261e;--accent:#0b5cad}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg);overflow-wrap:break-word}
header,main{max-width:1200px;margin:0 auto;padding:0 16px}
header{padding-top:12px;border-bottom:1px solid var(--line)}
h1{font-size:1.5rem;margin:.4em 0}h2{margin-top:1.6em;border-bottom:1px solid var(--line);padding-bottom:.2em}h3{font-size:1rem;margin:1em 0 .4em}h4{margin:1.2em 0 .4em}
a{color:var(--accent)}
.muted{color:var(--muted)}
.verdict{display:inline-block;padding:.1em .6em;border-radius:4px;color:#fff;font-size:1rem;vertical-align:middle}
.verdict.pass{background:var(--pass)}.verdict.fail{background:var(--fail)}
.cards{display:flex;flex-wrap:wrap;gap:10px}
.card{background:var(--card);border:1px solid var(--line);border-radius:6px;padding:8px 14px;min-width:120px}
.card .num{font-size:1.6rem;font-weight:600}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(280px,100%),1fr));gap:16px}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid var(--line);vertical-align:top}
table.compact th,table.compact td{padding:2px 6px}
.n{text-align:right;font-variant-numeric:tabular-nums}
.wrap{overflow-wrap:anywhere;white-space:pre-wrap}
th button{font:inherit;font-weight:600;background:none;border:0;padding:0;cursor:pointer;color:var(--fg)}
th button::after{content:" ⇅";color:var(--muted)}
th button[aria-sort=ascending]::after{content:" ↑"}th button[aria-sort=descending]::after{content:" ↓"}
.filters{display:flex;flex-wrap:wrap;gap:12px;margin:.6em 0}
select,input{font:inherit;padding:2px 4px;max-width:100%}
.tag{display:inline-block;background:#e8eef5;border-radius:3px;padding:0 .4em;font-size:.85em;font-weight:normal}
.tag.bad,.bad{color:var(--fail);font-weight:600}
.sev-critical,.sev-high{color:var(--fail);font-weight:600}.sev-medium{color:#a35a00}
.plain{list-style:none;padding-left:0}
details.case{border:1px solid var(--line);border-radius:6px;margin:8px 0;padding:6px 12px}
details.case>summary{cursor:pointer}
.strip{font:13px/1.9 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;white-space:pre-wrap;overflow-wrap:anywhere;background:var(--card);padding:8px;border-radius:4px}
.t{border-radius:2px;cursor:pointer}
.t.gen{text-decoration:underline;text-decoration-color:var(--muted)}
.t.fired{outline:2px solid var(--fail);outline-offset:-1px}
.t.sel{box-shadow:0 0 0 2px var(--accent)}
pre.tip{font-size:12px;background:#fbfbfb;border:1px dashed var(--line);padding:6px;white-space:pre-wrap;overflow-wrap:anywhere;min-height:2em}
label.feature select{max-width:100%}
.diff{white-space:pre-wrap;overflow-wrap:anywhere;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:13px}
del{background:#fde2e0;color:#7d1a14}ins{background:#dff3e4;color:#14532d;text-decoration:none}
svg.chart{width:100%;max-width:480px;height:auto}svg.chart .bar{fill:var(--accent)}svg .axis{stroke:var(--muted);stroke-width:1}
svg.chart .tick{font-size:9px;fill:var(--muted)}
svg.delta{width:80px;height:10px}svg.delta .up{fill:var(--pass)}svg.delta .down{fill:var(--fail)}
td.tok{font-family:ui-monospace,Menlo,Consolas,monospace;white-space:pre}
pre.wrap{font-size:12px;background:var(--card);padding:8px}
.grid>*{min-width:0}td.digest,.digest{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.9em}
@media (max-width:600px){body{font-size:14px}.card{min-width:44%}th,td{padding:3px 4px}}
"""#

    /// Filters and sorting of the findings table, and the token strips' shading and details. Reads
    /// only data attributes and writes only text and styles: nothing it handles becomes markup.
    static let script = #"""
(function () {
  "use strict";
  var table = document.getElementById("findings");
  if (table) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var severity = document.getElementById("filter-severity");
    var rule = document.getElementById("filter-rule");
    var kase = document.getElementById("filter-case");
    var shown = document.getElementById("findings-shown");
    var filter = function () {
      var s = severity.value, r = rule.value, c = kase.value.toLowerCase(), n = 0;
      rows.forEach(function (tr) {
        var ok = (!s || tr.dataset.severity === s) && (!r || tr.dataset.rule === r) &&
                 (!c || tr.dataset["case"].toLowerCase().indexOf(c) >= 0);
        tr.hidden = !ok;
        if (ok) { n += 1; }
      });
      shown.textContent = String(n);
    };
    severity.addEventListener("change", filter);
    rule.addEventListener("change", filter);
    kase.addEventListener("input", filter);
    var buttons = Array.prototype.slice.call(table.querySelectorAll("th button"));
    buttons.forEach(function (b) {
      b.addEventListener("click", function () {
        var key = b.dataset.key, numeric = b.dataset.numeric === "1";
        var dir = b.getAttribute("aria-sort") === "ascending" ? -1 : 1;
        buttons.forEach(function (x) { x.removeAttribute("aria-sort"); });
        b.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
        rows.sort(function (a, z) {
          var x = a.dataset[key], y = z.dataset[key];
          return dir * (numeric ? parseFloat(x) - parseFloat(y) : x.localeCompare(y));
        });
        rows.forEach(function (tr) { body.appendChild(tr); });
      });
    });
  }
  Array.prototype.slice.call(document.querySelectorAll(".strip")).forEach(function (strip) {
    var data = JSON.parse(strip.dataset.acts || "{}");
    var tokens = Array.prototype.slice.call(strip.querySelectorAll(".t"));
    var select = document.querySelector('select[data-strip="' + strip.id + '"]');
    var tip = document.getElementById("tip-" + strip.id);
    var shade = function () {
      var series = (select && data[select.value]) || [];
      var top = 0, at = {};
      series.forEach(function (p) { top = Math.max(top, Math.abs(p[1])); at[p[0]] = p[1]; });
      tokens.forEach(function (t) {
        var v = at[t.dataset.p];
        if (v === undefined || top === 0) { t.style.backgroundColor = ""; return; }
        var a = (0.12 + 0.78 * Math.abs(v) / top).toFixed(3);
        t.style.backgroundColor = v >= 0 ? "rgba(235,120,20," + a + ")" : "rgba(40,110,230," + a + ")";
      });
    };
    if (select) { select.addEventListener("change", shade); }
    shade();
    strip.addEventListener("click", function (e) {
      var t = e.target.closest(".t");
      if (!t) { return; }
      tokens.forEach(function (x) { x.classList.remove("sel"); });
      t.classList.add("sel");
      if (tip) { tip.textContent = t.title; }
    });
  });
}());
"""#
}
