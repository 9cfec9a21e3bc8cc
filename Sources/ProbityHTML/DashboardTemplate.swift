// The dashboard's templates: an index of latents with a search box, and one page per latent. Every
// `{{value}}` is HTML-escaped by the template engine; `{{{…}}}` places only this module's own style
// sheet, script and SVG.

enum DashboardTemplate {
    static let index = #"""
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{{csp}}">
<title>{{view.pack}}: latents</title>
<style>{{{style}}}</style>
</head>
<body>
{{#view}}
<header><h1>{{pack}} <span class="muted">at {{hook}}</span></h1>
<p class="muted">{{count}} of {{total}} latents · statistics from {{scan}}</p></header>
<main>
<label>search by label or id <input id="search" type="search" placeholder="e.g. gold or 1024" autocomplete="off"></label>
<p class="muted"><span id="shown">{{count}}</span> shown</p>
<div class="scroll"><table id="latents">
<thead><tr><th>id</th><th>label</th><th class="n">frequency</th><th class="n">max activation</th><th>rules</th></tr></thead>
<tbody>
{{#rows}}<tr data-search="{{search}}" data-id="{{id}}"><td><a href="{{href}}">{{id}}</a></td><td>{{#named}}<strong>{{name}}</strong>{{/named}}{{^named}}<span class="muted">{{name}}</span>{{/named}}</td><td class="n">{{frequency}}</td><td class="n">{{maxActivation}}</td><td>{{rules}}</td></tr>
{{/rows}}
</tbody></table></div>
</main>
{{/view}}
<script>{{{script}}}</script>
</body>
</html>
"""#

    static let latent = #"""
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{{csp}}">
<title>{{view.pack}} #{{view.id}}: {{view.name}}</title>
<style>{{{style}}}</style>
</head>
<body>
{{#view}}
<header><p><a href="index.html">← {{pack}}</a></p>
<h1>#{{id}} {{name}}</h1>{{#hasDescription}}<p>{{description}}</p>{{/hasDescription}}</header>
<main>
<div class="cards">
  <div class="card"><div class="num" id="frequency">{{frequency}}</div><div class="muted">firing frequency</div></div>
  <div class="card"><div class="num" id="max-activation">{{maxActivation}}</div><div class="muted">max activation</div></div>
</div>
<p class="muted">{{pack}} at {{hook}}; statistics from {{scan}}.</p>
<div class="grid">
<section>
<h2>Activations</h2>
{{#hasHistogram}}<figure id="histogram">{{{histogram}}}<figcaption class="muted">{{histogramCaption}}</figcaption></figure>{{/hasHistogram}}
{{^hasHistogram}}<p class="muted">No activations recorded.</p>{{/hasHistogram}}
</section>
<section>
<h2>Logit effects</h2>
{{#hasLogits}}
<p class="muted">The decoder direction through the final norm's weight and the output head.</p>
<div class="pair">
<table id="promoted"><thead><tr><th>promotes</th><th class="n">logit</th></tr></thead><tbody>{{#promoted}}<tr><td class="tok">{{token}}</td><td class="n up">{{value}}</td></tr>{{/promoted}}</tbody></table>
<table id="suppressed"><thead><tr><th>suppresses</th><th class="n">logit</th></tr></thead><tbody>{{#suppressed}}<tr><td class="tok">{{token}}</td><td class="n down">{{value}}</td></tr>{{/suppressed}}</tbody></table>
</div>
{{/hasLogits}}
{{^hasLogits}}<p class="muted">Not computed.</p>{{/hasLogits}}
</section>
</div>
<h2>Top activating contexts</h2>
{{#hasContexts}}
<ol class="contexts">{{#contexts}}<li><span class="muted">{{source}} · peak {{peak}}</span><div class="strip">{{#tokens}}<span class="t {{level}}{{#peak}} peak{{/peak}}" title="{{tip}}">{{text}}</span>{{/tokens}}</div></li>{{/contexts}}</ol>
{{/hasContexts}}
{{^hasContexts}}<p class="muted">No contexts: run <code>probity features stats</code>, or the latent never fired in the scan.</p>{{/hasContexts}}
<h2>Rules</h2>
{{#hasRules}}<ul class="plain" id="rules">{{#rules}}<li data-rule="{{id}}"><strong>{{id}}</strong> <span class="muted">({{severity}}; {{use}} it; <a class="loc" href="{{href}}">{{location}}</a>)</span><br>{{description}}</li>{{/rules}}</ul>{{/hasRules}}
{{^hasRules}}<p class="muted">No rule uses this latent.</p>{{/hasRules}}
</main>
{{/view}}
<script>{{{script}}}</script>
</body>
</html>
"""#

    static let style = #"""
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2329;overflow-wrap:break-word}
header,main{max-width:1100px;margin:0 auto;padding:0 16px}
h1{font-size:1.5rem;margin:.4em 0}h2{font-size:1.15rem;margin-top:1.4em;border-bottom:1px solid #d9dee3}
a{color:#0b5cad}.muted{color:#5f6b76}
.cards{display:flex;flex-wrap:wrap;gap:10px}.card{background:#f5f7f9;border:1px solid #d9dee3;border-radius:6px;padding:8px 14px}
.card .num{font-size:1.3rem;font-weight:600}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(300px,100%),1fr));gap:16px}.grid>*{min-width:0}
.pair{display:flex;flex-wrap:wrap;gap:16px}.pair table{width:auto;min-width:200px}
.scroll{overflow-x:auto}table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:3px 8px;border-bottom:1px solid #d9dee3}.n{text-align:right;font-variant-numeric:tabular-nums}
.tok{font-family:ui-monospace,Menlo,Consolas,monospace;white-space:pre-wrap;overflow-wrap:anywhere}.up{color:#1f7a3a}.down{color:#b3261e}
input{font:inherit;padding:2px 4px;max-width:100%}
.plain{list-style:none;padding-left:0}.plain li{margin:.4em 0}
.contexts li{margin:.5em 0}
.strip{font:13px/1.8 ui-monospace,Menlo,Consolas,monospace;white-space:pre-wrap;overflow-wrap:anywhere;background:#f5f7f9;padding:6px;border-radius:4px}
.t.peak{outline:2px solid #b3261e;outline-offset:-1px}
.a1{background:rgba(235,120,20,.12)}.a2{background:rgba(235,120,20,.2)}.a3{background:rgba(235,120,20,.28)}
.a4{background:rgba(235,120,20,.36)}.a5{background:rgba(235,120,20,.45)}.a6{background:rgba(235,120,20,.54)}
.a7{background:rgba(235,120,20,.63)}.a8{background:rgba(235,120,20,.74)}.a9{background:rgba(235,120,20,.86)}
svg.chart{width:100%;max-width:460px;height:auto}svg.chart .bar{fill:#0b5cad}svg .axis{stroke:#5f6b76;stroke-width:1}svg.chart .tick{font-size:9px;fill:#5f6b76}
"""#

    /// The index's search: rows whose id or label (or rules) contain every word typed.
    static let indexScript = #"""
(function () {
  "use strict";
  var input = document.getElementById("search");
  var rows = Array.prototype.slice.call(document.querySelectorAll("#latents tbody tr"));
  var shown = document.getElementById("shown");
  input.addEventListener("input", function () {
    var words = input.value.toLowerCase().split(/\s+/).filter(Boolean), n = 0;
    rows.forEach(function (tr) {
      var text = tr.dataset.search, ok = words.every(function (w) { return text.indexOf(w) >= 0; });
      tr.hidden = !ok;
      if (ok) { n += 1; }
    });
    shown.textContent = String(n);
  });
}());
"""#

    /// Latent pages need no script; the policy admits only this empty one.
    static let latentScript = ""
}
