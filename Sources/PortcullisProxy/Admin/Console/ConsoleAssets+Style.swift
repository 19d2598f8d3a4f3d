extension ConsoleAssets {
    /// Readable without colour: every state is written out in words; colour only repeats it.
    static let style = #"""
:root { --fg: #1b1f24; --muted: #57606a; --line: #d0d7de; --bg: #ffffff; --panel: #f6f8fa; --accent: #0b5cad;
  --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
* { box-sizing: border-box; }
[hidden] { display: none !important; }
body { margin: 0; color: var(--fg); background: var(--bg); font-size: 15px; line-height: 1.45; }
a { color: var(--accent); }
:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
.skip { position: absolute; left: -999px; top: 0; background: var(--bg); padding: .5rem; }
.skip:focus { left: .5rem; }
.top { display: flex; flex-wrap: wrap; align-items: center; gap: .5rem 1.25rem; padding: .6rem 1rem; border-bottom: 1px solid var(--line); background: var(--panel); }
.brand { font-weight: 700; letter-spacing: .02em; }
nav { display: flex; flex-wrap: wrap; gap: .25rem 1rem; }
nav a { text-decoration: none; padding: .2rem .1rem; border-bottom: 2px solid transparent; }
nav a[aria-current="page"] { border-bottom-color: var(--accent); font-weight: 600; }
.who { margin-left: auto; color: var(--muted); }
main { padding: 1rem; max-width: 1400px; }
h1 { font-size: 1.35rem; margin: .2rem 0 .8rem; }
h2 { font-size: 1.1rem; margin: 1.4rem 0 .5rem; }
button, .button { font: inherit; padding: .35rem .7rem; border: 1px solid var(--line); border-radius: 6px; background: var(--panel); color: var(--fg); cursor: pointer; }
button.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
button.danger { border-color: var(--bad); color: var(--bad); }
button.link { background: none; border: none; color: var(--accent); text-decoration: underline; padding: 0; }
button:disabled { opacity: .5; cursor: default; }
input, select, textarea { font: inherit; padding: .35rem .45rem; border: 1px solid #8c959f; border-radius: 6px; max-width: 100%; }
label { display: block; font-weight: 600; margin: .6rem 0 .2rem; }
.hint { color: var(--muted); font-size: .9em; font-weight: normal; }
.toolbar { display: flex; flex-wrap: wrap; gap: .5rem; align-items: center; margin: .5rem 0 1rem; }
.form-row { display: flex; flex-wrap: wrap; gap: .2rem 1rem; align-items: flex-start; }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); white-space: nowrap; }
abbr { text-decoration: none; cursor: help; }
.split { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 0 2rem; align-items: start; }
.split h2 { margin-top: 0; }
.table-wrap { overflow-x: auto; }
#clients { font-size: .92em; }
#clients .client-name { overflow-wrap: anywhere; max-width: 16rem; }
#clients td:last-child { min-width: 12.5rem; }
tbody th { background: none; white-space: normal; }
.state { justify-self: start; }
caption { text-align: left; padding: .3rem 0; }
.form-row > div { min-width: 10rem; }
.checks label { display: inline-flex; gap: .3rem; font-weight: normal; margin: .2rem .8rem .2rem 0; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: .4rem .5rem; border-bottom: 1px solid var(--line); }
th { background: var(--panel); font-weight: 600; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.actions { display: flex; flex-wrap: wrap; gap: .3rem; }
.actions button { padding: .2rem .5rem; font-size: .9em; }
.state { display: inline-block; padding: 0 .45rem; border-radius: 999px; border: 1px solid currentColor; font-size: .85em; font-weight: 600; white-space: nowrap; }
.state.ok { color: var(--ok); } .state.off { color: var(--bad); } .state.warn { color: var(--warn); }
.state.ok::before { content: "\2713\00a0"; } .state.off::before { content: "\2715\00a0"; } .state.warn::before { content: "!\00a0"; }
.muted { color: var(--muted); }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .9em; overflow-wrap: anywhere; }
.panel { border: 1px solid var(--line); border-radius: 8px; padding: .8rem 1rem; margin: .8rem 0; background: var(--bg); }
.secret { border: 2px solid var(--warn); background: #fff8e5; }
.secret code#secret-value { display: block; padding: .5rem; background: var(--bg); border: 1px dashed var(--warn); margin: .4rem 0; font-size: 1em; }
.error { border: 2px solid var(--bad); background: #ffebe9; }
.notice { border-left: 4px solid var(--accent); background: var(--panel); }
#status:empty { display: none; }
#status { margin: .5rem 1rem 0; padding: .5rem .8rem; border-radius: 6px; background: var(--panel); border: 1px solid var(--line); }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; margin: 0; }
dl.facts dt { font-weight: 600; color: var(--muted); }
dl.facts dd { margin: 0; }
.decision { font-size: 1.2rem; font-weight: 700; }
.decision.allow { color: var(--ok); } .decision.deny { color: var(--bad); }
ol.log { list-style: none; padding: 0; margin: 0; max-height: 28rem; overflow: auto; border: 1px solid var(--line); border-radius: 8px; }
ol.log li { padding: .35rem .6rem; border-bottom: 1px solid var(--line); font-family: ui-monospace, Menlo, Consolas, monospace; font-size: .85em; overflow-wrap: anywhere; }
ol.log li.deny { background: #fff5f5; }
.chart { width: 100%; max-width: 720px; height: auto; border: 1px solid var(--line); border-radius: 8px; background: var(--bg); }
.legend { display: flex; flex-wrap: wrap; gap: .3rem 1rem; margin: .3rem 0; font-size: .9em; }
.swatch { display: inline-block; width: .9em; height: .9em; margin-right: .3em; vertical-align: -.1em; border: 1px solid var(--fg); }
.c2 { background: #2da44e; fill: #2da44e; } .c3 { background: #8c959f; fill: #8c959f; } .c4 { background: #d4a72c; fill: #d4a72c; } .c5 { background: #cf222e; fill: #cf222e; } .c1 { background: #57606a; fill: #57606a; }
dialog { border: 1px solid var(--line); border-radius: 10px; padding: 1rem 1.2rem; max-width: min(36rem, 94vw); width: 100%; }
dialog::backdrop { background: rgba(0, 0, 0, .35); }
dialog h2 { margin-top: 0; }
dialog .buttons { display: flex; gap: .5rem; justify-content: flex-end; margin-top: 1rem; flex-wrap: wrap; }
.signin { max-width: 26rem; margin: 2rem auto; }
.signin input { width: 100%; }
.rules td:first-child { white-space: nowrap; }
@media (max-width: 720px) {
  main { padding: .7rem; }
  #status { margin: .5rem .7rem 0; }
  .split { grid-template-columns: 1fr; }
  #clients .client-name { max-width: none; }
  table.cards caption { display: block; }
  .who { margin-left: 0; }
  table.cards thead { position: absolute; left: -9999px; }
  table.cards, table.cards tbody, table.cards tr, table.cards td, table.cards tbody th { display: block; width: 100%; }
  table.cards tr { border: 1px solid var(--line); border-radius: 8px; margin: 0 0 .8rem; padding: .3rem .2rem; }
  table.cards tbody th { border: none; background: none; padding: .3rem .5rem; font-size: 1.05em; }
  table.cards td { border: none; display: grid; grid-template-columns: 7.5rem minmax(0, 1fr); overflow-wrap: anywhere; gap: .5rem; padding: .25rem .5rem; text-align: left; }
  table.cards td::before { content: attr(data-label); font-weight: 600; color: var(--muted); }
  table.cards td.num { text-align: left; }
  dl.facts { grid-template-columns: 7.5rem minmax(0, 1fr); overflow-wrap: anywhere; }
}
"""#
}
